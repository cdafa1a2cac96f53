"""inference.client (the CLI's client) against the session's server."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import psycopg

from inference.client import Client, format_candle
from inference.server import ServerThread
from klinehouse.v1 import candle_pb2

from .conftest import BARS, FIRST_OPEN, candles, land_candles


def test_a_range_beyond_one_page_falls_back_to_the_paged_stream(server: ServerThread) -> None:
    with Client(f"127.0.0.1:{server.port}") as client:
        candles = list(
            client.get_candles(
                "BTCUSDT",
                "1h",
                start=FIRST_OPEN - timedelta(days=365),
                end=FIRST_OPEN + timedelta(days=1),
            )
        )
    assert len(candles) == 24  # 9,000 hours asked: more than GetCandles' 5,000
    assert format_candle(candles[0]).startswith("BTCUSDT      2024-02-28 00:00:00  O 40000")


def test_watch_yields_candles_as_they_land(
    server: ServerThread, warehouse: tuple[str, str]
) -> None:
    got: list[candle_pb2.Candle] = []
    ready = threading.Event()
    new_open = FIRST_OPEN + timedelta(days=45)  # outside the ranges other tests read

    with Client(f"127.0.0.1:{server.port}") as client:

        def consume() -> None:
            for candle in client.watch_candles(
                ["BTCUSDT"], "1h", replay_from=FIRST_OPEN + timedelta(hours=BARS - 1)
            ):
                got.append(candle)
                ready.set()
                if candle.open_time.ToDatetime(tzinfo=UTC) == new_open:
                    return

        worker = threading.Thread(target=consume, daemon=True)
        worker.start()
        assert ready.wait(20), "the replayed candle did not arrive"
        land_candles(warehouse[0], candles("BTCUSDT", new_open, 1, base="50000"))
        with psycopg.connect(warehouse[0], autocommit=True) as conn:
            payload = {"market": "spot", "symbol": "BTCUSDT", "interval": "1h"}
            conn.execute("SELECT pg_notify('klinehouse_candles', %s)", [json.dumps(payload)])
        worker.join(20)
        assert not worker.is_alive(), "the new candle did not arrive"
    opens = [c.open_time.ToDatetime(tzinfo=UTC) for c in got]
    assert opens[0] == FIRST_OPEN + timedelta(hours=BARS - 1)
    assert opens[-1] == new_open and len(set(opens)) == len(opens)
    assert datetime(2024, 1, 1, tzinfo=UTC) < opens[-1]
