"""Real data in a per-test warehouse, and copies of its tables in a test schema for defects."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import psycopg
import pytest
from psycopg import sql

from klinehouse import klines

ARCHIVE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
    "ignore",
)
COPY_SCHEMA = "qa_copy"


def read_spot_archive(path: Path) -> pl.DataFrame:
    """One headerless spot archive CSV in the kline schema (ms before 2025, µs after)."""
    symbol, interval = path.name.split("-")[:2]
    df = pl.read_csv(path, has_header=False, new_columns=list(ARCHIVE_COLUMNS), infer_schema=False)
    micros = df["open_time"].str.len_chars().max() == 16

    def ts(name: str) -> pl.Expr:
        raw = pl.col(name).cast(pl.Int64)
        return (raw if micros else raw * 1000).cast(klines.TIMESTAMP)

    return df.select(
        pl.lit("spot").alias("market"),
        pl.lit(symbol).alias("symbol"),
        pl.lit(interval).alias("interval"),
        ts("open_time").alias("open_time"),
        ts("close_time").alias("close_time"),
        *(pl.col(c).cast(klines.DECIMAL) for c in ("open", "high", "low", "close", "volume")),
        pl.col("quote_volume").cast(klines.DECIMAL),
        pl.col("trades").cast(pl.Int64),
        pl.col("taker_buy_base_volume").cast(klines.DECIMAL),
        pl.col("taker_buy_quote_volume").cast(klines.DECIMAL),
        pl.lit("archive").alias("source"),
    )


def copy_into(url: str, table: str, df: pl.DataFrame) -> None:
    buffer = io.BytesIO()
    df.select(klines.COLUMN_NAMES).write_csv(buffer, include_header=False)
    schema, name = table.split(".")
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(schema, name), sql.SQL(", ").join(map(sql.Identifier, klines.COLUMN_NAMES))
    )
    with psycopg.connect(url) as conn, conn.cursor() as cur, cur.copy(statement) as copy:
        copy.write(buffer.getvalue())


@pytest.fixture
def loaded_url(database_url: str, shared_data: Path) -> str:
    """A fresh warehouse holding the real spot archive klines (BTC and ETH, 7 months)."""
    files = sorted((shared_data / "binance" / "spot-archive").glob("*.csv"))
    copy_into(database_url, "raw.binance_klines", pl.concat([read_spot_archive(f) for f in files]))
    return database_url


@pytest.fixture
def raw_copy(loaded_url: str) -> str:
    """`qa_copy.binance_klines`: the loaded rows without the key constraint, free to break."""
    with psycopg.connect(loaded_url) as conn:
        conn.execute(f"CREATE SCHEMA {COPY_SCHEMA}")
        conn.execute(
            f"CREATE TABLE {COPY_SCHEMA}.binance_klines "
            "(LIKE raw.binance_klines INCLUDING DEFAULTS)"
        )
        conn.execute(f"INSERT INTO {COPY_SCHEMA}.binance_klines SELECT * FROM raw.binance_klines")
    return loaded_url
