"""A reload of identical rows writes nothing: no insert, no update, not even a row lock
(on TimescaleDB an ON CONFLICT that reaches a compressed row decompresses its chunk)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import psycopg

from extract.load import LoadStats, load_frame
from klinehouse import klines


def candles(hours: int, *, close: Decimal = Decimal("100.5")) -> pl.DataFrame:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    rows = [
        {
            "market": "spot",
            "symbol": "BTCUSDT",
            "interval": "1h",
            "open_time": start + timedelta(hours=h),
            "close_time": start + timedelta(hours=h + 1) - timedelta(milliseconds=1),
            "open": Decimal("100"),
            "high": Decimal("101"),
            "low": Decimal("99"),
            "close": close,
            "volume": Decimal("2"),
            "quote_volume": Decimal("201"),
            "trades": 7,
            "taker_buy_base_volume": Decimal("1"),
            "taker_buy_quote_volume": Decimal("100.5"),
            "source": "rest",
        }
        for h in range(hours)
    ]
    return pl.DataFrame(rows, schema=klines.polars_schema())


def _load_counting(url: str, df: pl.DataFrame) -> tuple[LoadStats, tuple[int, int, int]]:
    """Load inside one transaction and read that transaction's own tuple counters
    (pg_stat_xact_user_tables: exact, no wait for the statistics flush)."""
    with psycopg.connect(url) as conn:
        stats = load_frame(df, conn=conn)
        row = conn.execute(
            "SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables"
            " WHERE relid = 'raw.binance_klines'::regclass"
        ).fetchone()
        conn.commit()
    assert row is not None
    return stats, (int(row[0]), int(row[1]), int(row[2]))


def _row_versions(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return [
            (str(r[0]), str(r[1]))
            for r in conn.execute(
                "SELECT ctid::text, xmax::text FROM raw.binance_klines ORDER BY open_time"
            )
        ]


def test_reload_of_identical_rows_writes_and_locks_nothing(database_url: str) -> None:
    assert load_frame(candles(4), url=database_url) == LoadStats(inserted=4)
    before = _row_versions(database_url)

    stats, counters = _load_counting(database_url, candles(4))

    assert stats == LoadStats(unchanged=4)
    assert counters == (0, 0, 0)
    # same tuples, and no transaction's xmax on them: ON CONFLICT … WHERE would have locked each
    assert _row_versions(database_url) == before
    assert {xmax for _, xmax in before} == {"0"}


def test_reload_counts_new_revised_and_unchanged_rows_and_writes_only_those(
    database_url: str,
) -> None:
    load_frame(candles(4), url=database_url)
    revised = candles(5).with_columns(
        pl.when(pl.col("open_time") == datetime(2024, 3, 1, 1, tzinfo=UTC))
        .then(pl.lit(Decimal("100.75")))
        .otherwise(pl.col("close"))
        .cast(klines.polars_schema()["close"])
        .alias("close")
    )
    stats, (inserted, updated, _) = _load_counting(database_url, revised)

    assert stats == LoadStats(inserted=1, revised=1, unchanged=3)
    assert (inserted, updated) == (1, 1)
    untouched = [xmax for _, xmax in _row_versions(database_url)]
    # the three unchanged rows and the new one; the revised row's version carries its updater
    assert untouched.count("0") == 4


def test_a_null_from_a_source_lacking_a_column_is_no_change(database_url: str) -> None:
    load_frame(candles(2), url=database_url)
    ohlcv_only = candles(2).with_columns(
        pl.lit(None).cast(klines.polars_schema()[name]).alias(name)
        for name in ("quote_volume", "trades", "taker_buy_base_volume", "taker_buy_quote_volume")
    )
    stats, counters = _load_counting(database_url, ohlcv_only)
    assert stats == LoadStats(unchanged=2)
    assert counters == (0, 0, 0)
