"""The lake spool's cadence: complete hours of each series go out, the open hour waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from extract.stream.lake_spool import LakeSpool


def frame(symbol: str, *minutes: int) -> pl.DataFrame:
    start = datetime(2024, 11, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "market": "spot",
            "symbol": symbol,
            "interval": "1m",
            "open_time": [start + timedelta(minutes=m) for m in minutes],
        }
    )


def test_complete_hours_are_due_per_series_and_everything_on_shutdown() -> None:
    spool = LakeSpool(max_seconds=3600)
    spool.add(frame("BTCUSDT", 58, 59))
    spool.add(frame("ETHUSDT", 59))
    assert spool.take_due().is_empty()  # no series has passed its hour yet

    spool.add(frame("BTCUSDT", 60))  # BTCUSDT's 00:00 hour is complete, ETHUSDT's is not
    due = spool.take_due()
    assert sorted(due["open_time"].dt.minute().to_list()) == [58, 59]
    assert due["symbol"].unique().to_list() == ["BTCUSDT"]
    assert len(spool) == 2

    rest = spool.take_due(everything=True)
    assert sorted(rest["symbol"].to_list()) == ["BTCUSDT", "ETHUSDT"]
    assert len(spool) == 0 and spool.take_due(everything=True).is_empty()


def test_the_age_limit_writes_an_open_hour() -> None:
    spool = LakeSpool(max_seconds=0.0)
    spool.add(frame("BTCUSDT", 5))
    assert spool.take_due().height == 1
