"""Issue 15 fault suite: PostgreSQL and S3 restarting during `klinehouse stream`.

A private stack of its own (the session's stack stays untouched). The websocket
stand-in plays real November 2024 candles; while it plays, the project's own
PostgreSQL is stopped and started again on the same port and data directory, then
the moto S3 server. Afterwards raw holds exactly the stand-in's closed candles (no
candle lost, none twice), and so does the lake: what it held before moto went away
(moto forgets its objects on a restart, a real S3 would not) plus what was written
after, each candle once.
"""

from __future__ import annotations

import asyncio
import io
from decimal import Decimal
from pathlib import Path

import polars as pl
import psycopg
import pytest

from devstack.standin.binance_ws import Scenario, StandinThread, archive_candles, generated_timeline
from extract.lake_store import prefix_object_keys, read_objects
from extract.stream.ingester import StreamIngester, StreamOptions
from klinehouse.settings import get_settings

from ..faults import s3_snapshot, start_postgres, start_s3, stop_postgres, stop_s3, wait_until

SYMBOLS = ("BTCUSDT", "ETHUSDT")
CANDLES = 240  # ten days of hourly candles per series
PACE = 0.04  # seconds between the stand-in's ticks: ~10 s of stream
LAKE_SECONDS = 2.0  # the lake writer's cadence: after a write it waits this long

Key = tuple[str, int]  # (symbol, open_time ms)


def _lake_rows(frame: pl.DataFrame) -> list[tuple[Key, Decimal]]:
    return [
        ((r["symbol"], int(r["open_time"].timestamp() * 1000)), r["close"])
        for r in frame.iter_rows(named=True)
    ]


@pytest.mark.timeout(180)  # a hang fails here, not at the suite's 900 s
def test_postgres_and_s3_restarts_during_a_stream_lose_nothing_and_double_nothing(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devstack.stack.private import private_stack
    from klinehouse import paths

    archive = shared_data / "binance/spot-archive"
    series = [
        archive_candles(archive / f"{s}-1h-2024-11.csv", symbol=s, interval="1h")[:CANDLES]
        for s in SYMBOLS
    ]
    truth = {(c.symbol, c.open_ms): Decimal(c.close) for s in series for c in s}
    scenario = Scenario(generated_timeline(series, updates=1), pace=PACE)
    options = StreamOptions(
        "spot", SYMBOLS, ("1h",), flush_rows=50, flush_seconds=0.1,
        lake_seconds=LAKE_SECONDS, backfill=False,
    )  # fmt: skip

    with private_stack("fault-stream-") as stack, StandinThread(scenario) as standin:
        monkeypatch.setenv("KLINEHOUSE_BINANCE_WS_URL", standin.url)
        settings = get_settings(fresh=True)
        home = paths.home()
        seen: dict[str, int] = {}
        before_s3: dict[str, bytes] = {}

        def outages(ingester: StreamIngester) -> None:
            stats = ingester.stats
            wait_until(lambda: stats.committed > 0, 30, "a first commit")
            stop_postgres(home)
            seen["closed_at_pg_stop"] = stats.closed
            wait_until(lambda: stats.flush_errors > 0, 30, "a flush meeting the outage")
            start_postgres(home)
            seen["closed_at_pg_start"] = stats.closed
            # Right after a lake write the writer waits LAKE_SECONDS: the bucket's
            # contents read now are all moto will forget.
            written = stats.lake_rows
            wait_until(lambda: stats.lake_rows > written, 30, "a lake write")
            before_s3.update(s3_snapshot(settings))
            stop_s3(home)
            seen["closed_at_s3_stop"] = stats.closed
            wait_until(
                lambda: str(ingester.health()["last_error"]).startswith("lake:"),
                30,
                "a lake write meeting the outage",
            )
            start_s3(home, settings.lake_bucket)
            seen["closed_at_s3_start"] = stats.closed

        async def main() -> StreamIngester:
            ingester = StreamIngester(options, settings=settings)
            task = asyncio.create_task(ingester.run())
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, outages, ingester)
            assert await loop.run_in_executor(None, standin.wait_finished, 30)
            for _ in range(300):  # everything received is committed again, by the flusher
                if ingester.stats.committed >= len(truth) or task.done():
                    break
                await asyncio.sleep(0.1)
            ingester.stop()
            await task
            return ingester

        ingester = asyncio.run(main())
        stats = ingester.stats
        with psycopg.connect(stack.require_database_url()) as conn:
            raw = conn.execute(
                "SELECT symbol, (extract(epoch FROM open_time) * 1000)::bigint, close"
                " FROM raw.binance_klines WHERE market = 'spot' AND interval = '1h'"
            ).fetchall()
        after_s3 = read_objects(prefix_object_keys("klines/market=spot", settings), settings)

    print(seen, f"flush errors {stats.flush_errors}, lake rows {stats.lake_rows}")
    # Both outages happened mid-stream: candles kept arriving while each service was away.
    assert 0 < seen["closed_at_pg_stop"] < seen["closed_at_pg_start"] < len(truth), seen
    assert seen["closed_at_s3_stop"] < len(truth), seen
    assert stats.flush_errors > 0 and stats.closed == len(truth) and not stats.skipped

    # raw: exactly the closed candles, each once.
    assert len(raw) == len(truth)
    assert {(s, t): c for s, t, c in raw} == truth
    assert sum(c for _, _, c in raw) == sum(truth.values())

    # The lake: what moto held before its restart plus what was written after, each once.
    before = [
        row for body in before_s3.values() for row in _lake_rows(pl.read_parquet(io.BytesIO(body)))
    ]
    after = _lake_rows(after_s3)
    assert before and after, "the lake was written both before and after the S3 restart"
    assert len({k for k, _ in before}) == len(before) and len({k for k, _ in after}) == len(after)
    assert not {k for k, _ in before} & {k for k, _ in after}, "candles written twice"
    assert dict(before + after) == truth
    assert stats.lake_rows >= len(truth)
    assert ingester.last_error is None  # every kind of error cleared once things worked
