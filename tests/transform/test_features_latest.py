"""marts.candle_features_latest reads by key: the catalogue serving.series, then each
series' newest clean bar and its lookback as key ranges of raw, never a scan of the
history; and it equals the newest rows of marts.candle_features."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import psycopg

from extract.load import load_frame
from klinehouse.features import NUMERIC_FEATURES
from klinehouse.settings import Settings
from transform.runner import run_dbt

from ..marts import create_database, drop_database, klines, with_db
from ..plans import explain, rows_read, seq_scans

FIRST = datetime(2023, 3, 1, tzinfo=UTC)
BARS = 8400  # ~50k rows over 6 series: enough history for the planner to prefer a scan
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "ADAUSDT")
D = pl.Decimal(38, 8)


def _series(symbol: str, k: int) -> pl.DataFrame:
    times = pl.datetime_range(
        FIRST, FIRST + timedelta(hours=BARS - 1), "1h", time_zone="UTC", eager=True
    )
    price = (100 + k + (pl.col("i") / 3.0).sin() * 10).round(8).cast(D)
    frame = klines(
        symbol,
        times,
        open=price,
        high=price + pl.lit(Decimal("2.5")),
        low=price - pl.lit(Decimal("2.25")),
        close=price + ((pl.col("i") % 3 - 1).cast(D) * pl.lit(Decimal("0.12345678"))),
        volume=10 + pl.col("i") % 5 + k,
        trades=100 + pl.col("i"),
        taker_buy_base_volume=pl.lit(Decimal("5.25")),
    )
    if symbol == "ETHUSDT":
        # its newest loaded bar has invalid OHLC: the newest clean bar is the one before
        frame = frame.with_columns(
            pl.when(pl.col("open_time") == pl.col("open_time").max())
            .then(pl.col("low") - pl.lit(Decimal("50")))
            .otherwise(pl.col("high"))
            .alias("high")
        )
    return frame


def test_latest_features_read_by_key_and_equal_the_mart(stack: Settings) -> None:
    name = create_database(stack, prefix="latest_plan_")
    try:
        url = with_db(stack.require_database_url(), name)
        for k, symbol in enumerate(SYMBOLS):
            load_frame(_series(symbol, k), url=url)
        run_dbt(
            ["run", "--select", "+candle_features", "+candle_features_latest"], database_url=url
        )
        names = ", ".join(NUMERIC_FEATURES)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE raw.binance_klines")
            conn.execute("ANALYZE serving.series")
            control = explain(conn, "SELECT DISTINCT symbol FROM raw.binance_klines")
            assert seq_scans(control) == ["raw.binance_klines"]  # the check can fail
            assert rows_read(control) >= len(SYMBOLS) * BARS

            plan = explain(conn, "SELECT * FROM marts.candle_features_latest")
            text = "\n".join(
                r[0]
                for r in conn.execute(
                    "EXPLAIN (ANALYZE) SELECT * FROM marts.candle_features_latest"
                )
            )
            assert not seq_scans(plan), text
            # O(series x lookback): each series' 25 bars and BTCUSDT's 2 at its time
            assert rows_read(plan) <= len(SYMBOLS) * 40, text

            latest = conn.execute(
                f"SELECT market, symbol, interval, open_time, {names}"
                " FROM marts.candle_features_latest ORDER BY symbol"
            ).fetchall()
            stored = conn.execute(
                f"SELECT DISTINCT ON (symbol) market, symbol, interval, open_time, {names}"
                " FROM marts.candle_features ORDER BY symbol, open_time DESC"
            ).fetchall()
        assert latest == stored
        assert [r[1] for r in latest] == sorted(SYMBOLS)
        newest = FIRST + timedelta(hours=BARS - 1)
        by_symbol = {r[1]: r[3] for r in latest}
        assert by_symbol["ETHUSDT"] == newest - timedelta(hours=1)
        assert by_symbol["BTCUSDT"] == newest
    finally:
        drop_database(stack, name)
