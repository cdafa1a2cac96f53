"""The one definition of a kline: markets, intervals, columns and their types.

Prices and volumes are exact decimals end to end (Binance sends decimal
strings); no float round trip. Everything else — the parquet lake, the COPY into
PostgreSQL, the migrations' table — follows this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import polars as pl

MARKETS: Final = ("spot", "usdm", "coinm")
SOURCES: Final = ("rest", "archive", "stream", "import")

# Every interval Binance offers; 1M is a calendar month and has no fixed length.
INTERVALS: Final[dict[str, timedelta | None]] = {
    "1s": timedelta(seconds=1),
    "1m": timedelta(minutes=1),
    "3m": timedelta(minutes=3),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "4h": timedelta(hours=4),
    "6h": timedelta(hours=6),
    "8h": timedelta(hours=8),
    "12h": timedelta(hours=12),
    "1d": timedelta(days=1),
    "3d": timedelta(days=3),
    "1w": timedelta(weeks=1),
    "1M": None,
}

DECIMAL_SCALE: Final = 8  # Binance quotes prices and quantities with at most 8 decimals
DECIMAL: Final = pl.Decimal(precision=38, scale=DECIMAL_SCALE)
TIMESTAMP: Final = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    sql_type: str
    nullable: bool = False


COLUMNS: Final[tuple[Column, ...]] = (
    Column("market", pl.String(), "text"),
    Column("symbol", pl.String(), "text"),
    Column("interval", pl.String(), "text"),
    Column("open_time", TIMESTAMP, "timestamptz"),
    Column("close_time", TIMESTAMP, "timestamptz"),
    Column("open", DECIMAL, "numeric"),
    Column("high", DECIMAL, "numeric"),
    Column("low", DECIMAL, "numeric"),
    Column("close", DECIMAL, "numeric"),
    Column("volume", DECIMAL, "numeric"),
    Column("quote_volume", DECIMAL, "numeric", nullable=True),
    Column("trades", pl.Int64(), "bigint", nullable=True),
    Column("taker_buy_base_volume", DECIMAL, "numeric", nullable=True),
    Column("taker_buy_quote_volume", DECIMAL, "numeric", nullable=True),
    Column("source", pl.String(), "text"),
)

KEY: Final = ("market", "symbol", "interval", "open_time")
COLUMN_NAMES: Final = tuple(c.name for c in COLUMNS)
VALUE_COLUMNS: Final = tuple(c.name for c in COLUMNS if c.name not in KEY)


def polars_schema() -> pl.Schema:
    return pl.Schema({c.name: c.dtype for c in COLUMNS})


def interval_length(interval: str) -> timedelta | None:
    """The fixed length of an interval (None for 1M); ValueError names an unknown one."""
    try:
        return INTERVALS[interval]
    except KeyError:
        raise ValueError(
            f"unknown interval {interval!r}: Binance offers {', '.join(INTERVALS)}"
        ) from None


def check_market(market: str) -> str:
    if market not in MARKETS:
        raise ValueError(f"unknown market {market!r}: one of {', '.join(MARKETS)}")
    return market
