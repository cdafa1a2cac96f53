"""Both bucketing branches of dbt_project/macros/time_bin.sql: date_bin on plain PostgreSQL,
time_bucket where the target database has TimescaleDB. Each runs where its branch is live and
says plainly why it skips elsewhere (TimescaleDB is not installable on every machine)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import psycopg
import pytest

from klinehouse import db, klines
from transform.runner import run_dbt, target_dir

COMPILED = "run/klinehouse/models/intermediate/int_klines_resampled.sql"


def _minutes(count: int) -> pl.DataFrame:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    close = [Decimal(100) + Decimal((i * 37) % 101 - 50) / 10 for i in range(count)]
    rows = [
        {
            "market": "spot",
            "symbol": "SOLUSDT",
            "interval": "1m",
            "open_time": start + timedelta(minutes=i),
            "close_time": start + timedelta(minutes=i + 1, milliseconds=-1),
            "open": close[i],
            "high": close[i] + 1,
            "low": close[i] - 1,
            "close": close[i],
            "volume": Decimal(i % 13 + 1),
            "quote_volume": Decimal(i % 13 + 1) * close[i],
            "trades": i % 7 + 1,
            "taker_buy_base_volume": Decimal(i % 13 + 1) / 2,
            "taker_buy_quote_volume": None,
            "source": "rest",
        }
        for i in range(count)
    ]
    return pl.DataFrame(rows, schema=klines.polars_schema())


def _expected_5m(bars: pl.DataFrame) -> list[tuple[object, ...]]:
    out = []
    for first in range(0, bars.height - bars.height % 5, 5):
        b = bars.slice(first, 5)
        out.append(
            (
                b["open_time"][0],
                b["open"][0],
                max(b["high"]),
                min(b["low"]),
                b["close"][-1],
                sum(b["volume"]),
            )
        )
    return out


@pytest.mark.parametrize("timescaledb", [False, True], ids=["date_bin", "time_bucket"])
def test_resampled_bars_from_the_live_bucketing_branch(warehouse: str, timescaledb: bool) -> None:
    with psycopg.connect(warehouse) as conn:
        enabled = db.timescaledb_enabled(conn)
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
    if timescaledb and not enabled:
        pytest.skip(
            "time_bucket branch untested here: TimescaleDB is "
            + ("installed but not enabled (not preloaded)" if available else "not installed")
            + " on this PostgreSQL server"
        )
    if not timescaledb and enabled:
        pytest.skip(
            "date_bin branch untested on this TimescaleDB database; the dbt unit test "
            "resample_five_1m_bars_into_one_5m_bar (has_timescaledb: false) covers it"
        )
    from extract.load import load_frame

    bars = _minutes(12)  # two complete 5m buckets, an incomplete third
    load_frame(bars, url=warehouse)
    run_dbt(["run", "--select", "+int_klines_resampled"])

    compiled = (target_dir() / COMPILED).read_text()
    assert ("time_bucket(" in compiled) is timescaledb
    assert ("date_bin(" in compiled) is not timescaledb
    with psycopg.connect(warehouse) as conn:
        got = conn.execute(
            "SELECT open_time, open, high, low, close, volume FROM intermediate.int_klines_resampled"
            " WHERE interval = '5m' ORDER BY open_time"
        ).fetchall()
    assert got == _expected_5m(bars)
