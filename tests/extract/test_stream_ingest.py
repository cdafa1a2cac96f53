"""The ingester against the websocket stand-in, real PostgreSQL and the S3 lake."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from extract.lake_store import prefix_object_keys, read_objects
from extract.stream.ingester import StreamIngester, StreamOptions, StreamStats
from klinehouse.settings import Settings, get_settings
from klinehouse.standin.binance_ws import Scenario, StandinThread, recorded_timeline


@pytest.fixture
def stream_settings(
    database_url: str, lake_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """get_settings() sees a fresh migrated database and an empty lake bucket."""
    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", database_url)
    return get_settings(fresh=True)


@pytest.fixture
def ws_standin(monkeypatch: pytest.MonkeyPatch) -> Callable[[Scenario], object]:
    """A context manager factory: the stand-in playing `scenario`, its URL in the settings."""

    @contextmanager
    def start(scenario: Scenario) -> Iterator[StandinThread]:
        with StandinThread(scenario) as standin:
            monkeypatch.setenv("KLINEHOUSE_BINANCE_WS_URL", standin.url)
            get_settings(fresh=True)
            yield standin

    return start


def run_until_played(
    options: StreamOptions, standin: StandinThread, *, settle: float = 0.5, timeout: float = 60
) -> StreamStats:
    """Run the ingester in this thread until the stand-in has played its timeline."""

    async def main() -> StreamStats:
        ingester = StreamIngester(options, settings=get_settings(fresh=True))
        task = asyncio.create_task(ingester.run())
        loop = asyncio.get_running_loop()
        played = await loop.run_in_executor(None, standin.wait_finished, timeout)
        assert played, "the stand-in did not finish its timeline"
        await asyncio.sleep(settle)  # let the last frames cross the socket
        ingester.stop()
        return await task

    return asyncio.run(main())


COLUMNS = "symbol, interval, (extract(epoch FROM open_time) * 1000)::bigint, open, high, low, close, volume, quote_volume, trades, taker_buy_base_volume, taker_buy_quote_volume, source"


def stored(url: str) -> set[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return set(conn.execute(f"SELECT {COLUMNS} FROM raw.binance_klines").fetchall())


def expected_rows(
    events: list[dict[str, object]], source: str = "stream"
) -> set[tuple[object, ...]]:
    rows = set()
    for data in events:
        k = data["k"]
        assert isinstance(k, dict)
        rows.add(
            (
                k["s"],
                k["i"],
                k["t"],
                *(Decimal(k[f]) for f in "ohlcvq"),
                k["n"],
                Decimal(k["V"]),
                Decimal(k["Q"]),
                source,
            )
        )
    return rows


def test_recorded_stream_stores_exactly_the_closed_candles(
    stream_settings: Settings, ws_standin, shared_data: Path
) -> None:
    ticks = recorded_timeline(shared_data / "binance/api/ws_kline_events_1m.jsonl")
    events = [data for tick in ticks for _, data in tick]
    closing = [d for d in events if d["k"]["x"]]  # type: ignore[index]
    forming = [d for d in events if not d["k"]["x"]]  # type: ignore[index]
    assert len(closing) == 2 and len(forming) == 15  # the recording as documented

    with psycopg.connect(stream_settings.database_url, autocommit=True) as listener:
        listener.execute("LISTEN klinehouse_candles")
        with ws_standin(Scenario(ticks)) as standin:
            options = StreamOptions(
                market="spot",
                symbols=("FTMUSDT", "SXPBTC", "XMRBTC"),
                intervals=("1m",),
                flush_rows=1000,
                flush_seconds=0.2,
                lake_seconds=3600,
            )
            stats = run_until_played(options, standin)
        notes = [json.loads(n.payload) for n in listener.notifies(timeout=1, stop_after=10)]

    rows = stored(stream_settings.database_url)
    assert rows == expected_rows(closing)
    # No forming update is stored (the last one before the close may equal the closed candle).
    assert not rows & (expected_rows(forming) - expected_rows(closing))
    assert stats.closed == 2 and stats.forming == 15 and not stats.skipped
    assert sorted(notes, key=lambda n: n["symbol"]) == [
        {
            "market": "spot",
            "symbol": "FTMUSDT",
            "interval": "1m",
            "open_time": "2021-08-14T14:46:00Z",
        },
        {
            "market": "spot",
            "symbol": "SXPBTC",
            "interval": "1m",
            "open_time": "2021-08-14T14:46:00Z",
        },
    ]
    # The lake receives the same candles (written on shutdown, the hour not being complete).
    lake = read_objects(prefix_object_keys("klines/market=spot", stream_settings), stream_settings)
    assert sorted(lake["symbol"].to_list()) == ["FTMUSDT", "SXPBTC"]
    assert set(lake["close"].to_list()) == {Decimal(d["k"]["c"]) for d in closing}  # type: ignore[index]
