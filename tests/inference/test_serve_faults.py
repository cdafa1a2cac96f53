"""Issue 15 fault suite: the project's own PostgreSQL restarting under `klinehouse serve`.

A private stack of its own (the session's stack stays untouched), its marts built by
dbt from real November 2024 candles. While PostgreSQL is stopped, calls fail fast
with UNAVAILABLE (well before their deadline, so that clients back off and retry);
once it is started again on the same port and data directory, the service recovers
by itself and answers as before, and a StreamCandles call opened before the restart
is still open and delivers the candles landing after it, each once.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from inference.server import ServerConfig, ServerThread
from klinehouse.v1 import candle_service_pb2, candle_service_pb2_grpc

from ..faults import start_postgres, stop_postgres, wait_until
from ..marts import seed_and_build
from .test_candles import ts

SEEDED = 72  # hours in the marts before the restart
LANDED = 24  # hours landing after it
DEADLINE = 10.0


def _rows(candles: object) -> list[tuple[datetime, Decimal]]:
    return [(c.open_time.ToDatetime(tzinfo=UTC), Decimal(c.close)) for c in candles]  # type: ignore[attr-defined]


@pytest.mark.timeout(180)  # a hang fails here, not at the suite's 900 s
def test_a_postgres_restart_under_serve_is_unavailable_fast_then_recovers(
    shared_data: Path,
) -> None:
    from devstack.stack.private import private_stack
    from extract.archive import read_archive_csv
    from extract.load import load_frame
    from klinehouse import paths
    from transform.runner import run_dbt

    frame = read_archive_csv(
        shared_data / "binance/spot-archive/BTCUSDT-1h-2024-11.csv",
        market="spot", symbol="BTCUSDT", interval="1h",
    ).sort("open_time")  # fmt: skip
    seeded, landed = frame.head(SEEDED), frame.slice(SEEDED, LANDED)
    first = seeded["open_time"][0]
    truth = [
        (r["open_time"], r["close"]) for r in frame.head(SEEDED + LANDED).iter_rows(named=True)
    ]

    with private_stack("fault-serve-") as stack:
        owner, home = stack.require_database_url(), paths.home()
        seed_and_build(owner, [seeded], ("+candles",))
        config = ServerConfig(
            address="127.0.0.1:0", database_url=stack.reader_url(),
            champion_poll_seconds=0.2, grace_seconds=1.0,
        )  # fmt: skip
        request = candle_service_pb2.GetCandlesRequest(
            symbol="BTCUSDT", interval="1h", start_time=ts(first),
            end_time=ts(first + timedelta(hours=SEEDED)),
        )  # fmt: skip
        with (
            ServerThread(config) as server,
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch,
        ):
            stub = candle_service_pb2_grpc.CandleServiceStub(ch)
            before = _rows(stub.GetCandles(request, timeout=DEADLINE).candles)
            assert before == truth[:SEEDED]

            replay_from = first + timedelta(hours=SEEDED - 3)
            call = stub.StreamCandles(
                candle_service_pb2.StreamCandlesRequest(
                    symbols=["BTCUSDT"], interval="1h", replay_start_time=ts(replay_from)
                ),
                timeout=120,
            )
            streamed: list[tuple[datetime, Decimal]] = []
            ended: list[BaseException | None] = []

            def consume() -> None:
                try:
                    for message in call:
                        streamed.extend(_rows(message.candles))
                    ended.append(None)
                except grpc.RpcError as exc:
                    ended.append(exc)

            consumer = threading.Thread(target=consume, daemon=True)
            consumer.start()
            wait_until(lambda: len(streamed) == 3, 30, "the replay")

            stop_postgres(home)
            timings = []
            for _ in range(3):
                started = time.monotonic()
                with pytest.raises(grpc.RpcError) as info:
                    stub.GetCandles(request, timeout=DEADLINE)
                timings.append(time.monotonic() - started)
                assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value.details()
                assert "database" in info.value.details()
            print(f"calls during the outage failed after {timings} s")
            assert max(timings) < DEADLINE / 2, timings  # fast, not at the deadline
            start_postgres(home)

            recovered = None
            deadline = time.monotonic() + 30
            while recovered is None:
                try:
                    recovered = _rows(stub.GetCandles(request, timeout=DEADLINE).candles)
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc.details()
                    assert time.monotonic() < deadline, "the service did not recover"
                    time.sleep(0.2)
            assert recovered == before

            load_frame(landed, url=stack.loader_url())
            run_dbt(["run", "--select", "candles"], database_url=owner)  # NOTIFYs the marts
            wait_until(lambda: len(streamed) >= 3 + LANDED or bool(ended), 30, "the landed candles")
            assert not ended, f"the stream ended: {ended}"
            time.sleep(0.5)  # nothing more (no candle twice) arrives
            call.cancel()
            consumer.join(10)
    assert streamed == truth[SEEDED - 3 :]
