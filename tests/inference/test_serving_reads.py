"""Serving reads by key (issue 14, item 1): the served features equal dbt's
marts.candle_features bar for bar, the cleaning rules equal the staging model's, and
every serving query's plan reaches raw through an index, never a Seq Scan."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import psycopg
import pytest
from psycopg import sql

from extract.load import load_frame
from inference.requests import Series
from inference.store import Store
from klinehouse.bar_features import Bar, btc_return, newest_features
from klinehouse.features import NUMERIC_FEATURES
from klinehouse.settings import Settings

from ..marts import create_database, drop_database, seed_and_build, with_db
from ..plans import explain as _explain
from ..plans import rows_read as _rows_read
from ..plans import seq_scans as _seq_scans
from .test_dbt_marts import raw_klines

FIRST = datetime(2024, 2, 26, tzinfo=UTC)
SPOT_1H = Series("spot", 1, "1h")
_BAR = (
    "(extract(epoch FROM open_time) * 1000000)::bigint, high::float8, low::float8, "
    "close::float8, volume::float8, taker_buy_base_volume::float8"
)


def _odd_rows() -> pl.DataFrame:
    """GRIDUSDT bars on and off the grids of 1m, 4h, 1w and 1M, and bars with invalid
    OHLC, and a bar that closes before it opens (no five contiguous 1m bars: nothing is
    resampled from them)."""
    base = raw_klines("GRIDUSDT", FIRST, 12)
    cases = [
        ("1m", datetime(2024, 3, 1, 0, 7, tzinfo=UTC)),
        ("1m", datetime(2024, 3, 1, 0, 9, 30, tzinfo=UTC)),  # off the minute grid
        ("4h", datetime(2024, 3, 1, 8, tzinfo=UTC)),
        ("4h", datetime(2024, 3, 1, 9, tzinfo=UTC)),  # off the 4h grid
        ("1w", datetime(2024, 3, 4, tzinfo=UTC)),  # a Monday
        ("1w", datetime(2024, 3, 7, tzinfo=UTC)),  # a Thursday: off the week grid
        ("1M", datetime(2024, 3, 1, tzinfo=UTC)),
        ("1M", datetime(2024, 4, 2, tzinfo=UTC)),  # not the 1st: off the month grid
        ("1d", datetime(2024, 3, 1, tzinfo=UTC)),  # high below open: invalid
        ("1d", datetime(2024, 3, 2, tzinfo=UTC)),  # low <= 0: invalid
        ("1d", datetime(2024, 3, 3, tzinfo=UTC)),  # valid
        ("1d", datetime(2024, 3, 4, tzinfo=UTC)),  # closes before it opens: maintenance
    ]
    rows = base.head(len(cases)).with_columns(
        pl.Series("interval", [c[0] for c in cases]),
        pl.Series("open_time", [c[1] for c in cases]).dt.cast_time_unit("us"),
    )
    high = pl.col("high")
    return rows.with_columns(
        pl.when(pl.int_range(pl.len()) == 8).then(pl.col("open") - 1).otherwise(high).alias("high"),
        pl.when(pl.int_range(pl.len()) == 9).then(pl.lit(Decimal(0))).otherwise(pl.col("low"))
        .alias("low"),
        pl.when(pl.int_range(pl.len()) == 11)
        .then(pl.col("open_time") - pl.duration(milliseconds=1))
        .otherwise(pl.col("open_time") + pl.duration(seconds=59)).alias("close_time"),
    )  # fmt: skip


def _series_frames() -> list[pl.DataFrame]:
    """BTCUSDT with a gap and an invalid bar; ETHUSDT with a gap and an off-grid bar;
    SOLUSDT lagging BTCUSDT (its newest bar is older)."""
    btc = raw_klines("BTCUSDT", FIRST, 70).filter(pl.int_range(pl.len()) != 30)
    btc = btc.with_columns(
        pl.when(pl.int_range(pl.len()) == 40)
        .then(pl.col("low") - 50)
        .otherwise(pl.col("high"))
        .alias("high")  # high below low: invalid OHLC, never served nor featured
    )
    eth = raw_klines("ETHUSDT", FIRST, 70).filter(pl.int_range(pl.len()) != 10)
    off_grid = eth.head(1).with_columns(pl.col("open_time") + pl.duration(minutes=30))
    sol = raw_klines("SOLUSDT", FIRST + timedelta(hours=5), 50)
    return [btc, pl.concat([eth, off_grid]), sol, _odd_rows()]


@pytest.fixture(scope="module")
def built(stack: Settings) -> Iterator[tuple[str, str]]:
    """One database with raw loaded and marts.candle_features built by dbt."""
    name = create_database(stack, prefix="serving_")
    owner = with_db(stack.require_database_url(), name)
    seed_and_build(owner, _series_frames(), ["+candle_features"])
    yield owner, with_db(stack.reader_url(), name)
    drop_database(stack, name)


def _bars(conn: psycopg.Connection, symbol: str, interval: str) -> list[Bar]:
    rows = conn.execute(
        f"SELECT {_BAR} FROM serving.klines WHERE market = 'spot' AND symbol = %s"
        " AND interval = %s ORDER BY open_time",
        [symbol, interval],
    ).fetchall()
    return [Bar(*r) for r in rows]


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_served_features_equal_marts_candle_features_bar_for_bar(built: tuple[str, str]) -> None:
    owner, _ = built
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in NUMERIC_FEATURES)
    compared = 0
    with psycopg.connect(owner) as conn:
        series = conn.execute(
            "SELECT symbol, interval FROM serving.series WHERE market = 'spot'"
        ).fetchall()
        assert len(series) >= 8
        for symbol, interval in series:
            bars = _bars(conn, symbol, interval)
            btc = _bars(conn, "BTCUSDT", interval)
            marts = {
                r[0]: r[1:]
                for r in conn.execute(
                    sql.SQL(
                        "SELECT (extract(epoch FROM open_time) * 1000000)::bigint, {}"
                        " FROM marts.candle_features WHERE market = 'spot' AND symbol = %s"
                        " AND interval = %s"
                    ).format(columns),
                    [symbol, interval],
                ).fetchall()
            }
            assert sorted(marts) == [b.open_us for b in bars], (symbol, interval)
            for k, bar in enumerate(bars):
                newest_first = bars[k::-1]
                served = newest_features(
                    newest_first, interval, btc_return(btc, bar.open_us, interval)
                )
                expected = tuple(None if v is None else float(v) for v in marts[bar.open_us])
                mismatched = [
                    (name, s, e)
                    for name, s, e in zip(NUMERIC_FEATURES, served, expected, strict=True)
                    if not _close(s, e)
                ]
                assert not mismatched, (symbol, interval, bar.open_us, mismatched)
                compared += 1
    assert compared > 150


def test_the_store_serves_each_series_newest_marts_row(built: tuple[str, str]) -> None:
    owner, reader = built

    async def read() -> list[tuple[Any, ...]]:
        store = Store(reader, min_size=1, max_size=1)
        await store.open()
        try:
            return await store.latest_features(SPOT_1H, None, timeout=10)
        finally:
            await store.close()

    served = {row[0]: row for row in asyncio.run(read())}
    assert sorted(served) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in NUMERIC_FEATURES)
    with psycopg.connect(owner) as conn:
        for symbol, row in served.items():
            expected = conn.execute(
                sql.SQL(
                    "SELECT (extract(epoch FROM open_time) * 1000000)::bigint, {}"
                    " FROM marts.candle_features WHERE market = 'spot' AND symbol = %s"
                    " AND interval = '1h' ORDER BY open_time DESC LIMIT 1"
                ).format(columns),
                [symbol],
            ).fetchone()
            assert expected is not None
            assert row[1] == expected[0]
            assert all(
                _close(s, None if e is None else float(e))
                for s, e in zip(row[2:], expected[1:], strict=True)
            ), (symbol, row, expected)
    # SOLUSDT lags BTCUSDT: its btc_log_return_1 is BTCUSDT's at SOL's own newest bar
    assert served["SOLUSDT"][-1] is not None


def test_cleaning_rules_equal_the_staging_models(built: tuple[str, str]) -> None:
    """serving.klines keeps exactly the staging rows marts.candles keeps: is_on_grid,
    is_ohlc_valid and not is_close_before_open."""
    owner, _ = built
    key = "market, symbol, interval, open_time"
    with psycopg.connect(owner) as conn:
        staged = set(
            conn.execute(
                f"SELECT {key} FROM staging.stg_binance__klines"
                " WHERE is_on_grid AND is_ohlc_valid AND NOT is_close_before_open"
            ).fetchall()
        )
        served = set(conn.execute(f"SELECT {key} FROM serving.klines").fetchall())
        dropped = conn.execute(
            "SELECT count(*) FROM staging.stg_binance__klines"
            " WHERE NOT (is_on_grid AND is_ohlc_valid AND NOT is_close_before_open)"
        ).fetchone()
    assert served == staged
    assert dropped is not None and dropped[0] >= 8  # the odd rows were exercised


# --- by key: the plans -----------------------------------------------------------------


class _Recording(Store):
    """The real Store, recording each query it sends (to EXPLAIN them)."""

    def __init__(self, url: str) -> None:
        super().__init__(url, min_size=1, max_size=1)
        self.queries: list[tuple[str, Sequence[Any]]] = []

    async def fetch_all(
        self, queries: Sequence[tuple[str, Sequence[Any]]], *, timeout: float | None = None
    ) -> list[list[tuple[Any, ...]]]:
        self.queries.extend(queries)
        return await super().fetch_all(queries, timeout=timeout)


def test_serving_queries_read_raw_by_key(stack: Settings) -> None:
    """~50k rows over 6 series, analysed: every serving query's plan is index ranges
    that visit O(series x lookback) rows of raw, never a Seq Scan or all of a history."""
    name = create_database(stack, prefix="serving_plan_")
    try:
        owner = with_db(stack.require_database_url(), name)
        frames = [
            raw_klines(symbol, FIRST - timedelta(days=350), 8400)
            for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "ADAUSDT")
        ]
        for frame in frames:
            load_frame(frame, url=owner)
        with psycopg.connect(owner, autocommit=True) as conn:
            conn.execute("ANALYZE raw.binance_klines")
            conn.execute("ANALYZE serving.series")
        newest = FIRST - timedelta(days=350) + timedelta(hours=8399)
        store = _Recording(with_db(stack.reader_url(), name))

        async def exercise() -> None:
            await store.open()
            try:
                day = newest - timedelta(days=1)
                await store.candles(SPOT_1H, ["ETHUSDT"], day, newest, limit=100, timeout=10)
                await store.candles(SPOT_1H, ["ETHUSDT", "BTCUSDT"], day, None, limit=100)
                async for _ in store.candle_batches(SPOT_1H, ["ETHUSDT"], day, None, batch=10):
                    pass
                last = await store.last_open_times(SPOT_1H, ["ETHUSDT", "SOLUSDT"])
                await store.candles_after(SPOT_1H, {s: us - 3_600_000_000 for s, us in last.items()}, limit=10)  # fmt: skip
                await store.check_series("spot", "ETHUSDT")
                await store.latest_features(SPOT_1H, ["ETHUSDT"], timeout=10)
                await store.latest_features(SPOT_1H, None, timeout=10)
            finally:
                await store.close()

        asyncio.run(exercise())
        # candle_batches' cursor is not recorded by fetch_all: explain its range too
        assert len(store.queries) >= 7
        with psycopg.connect(owner) as conn:
            control = _explain(conn, "SELECT DISTINCT symbol FROM raw.binance_klines", [])
            assert _seq_scans(control) == ["raw.binance_klines"]  # the check can fail
            assert _rows_read(control) >= 50_000
            for query, params in store.queries:
                if "binance_klines" in query or "serving.klines" in query or "series" in query:
                    plan = _explain(conn, query, params)
                    assert not _seq_scans(plan), (query, plan)
                    # O(series asked x lookback), not O(history): 50,400 rows in raw
                    assert _rows_read(plan) <= 400, (query, _rows_read(plan))
            query, params = Store._range_query(SPOT_1H, ["ETHUSDT"], newest, None)
            assert not _seq_scans(_explain(conn, query, params))
    finally:
        drop_database(stack, name)
