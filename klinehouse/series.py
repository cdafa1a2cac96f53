"""The series catalogue `serving.series` (migration 0004): one row per loaded
(market, interval, symbol) with its first and newest open_time.

The loader records each batch's series here in the batch's own transaction
(`record`), so the catalogue never announces a candle that is not committed and
never misses one that is. The gRPC service reads it by key to list the series of a
market and interval, and to tell an unknown symbol from a series without bars.
"""

from __future__ import annotations

from typing import Final

import polars as pl
import psycopg

TABLE: Final = "serving.series"
# raw.binance_klines with marts.candles' cleaning rules (on the grid, valid OHLC).
CLEAN_KLINES: Final = "serving.klines"

_RECORD = (
    f"INSERT INTO {TABLE} AS s (market, interval, symbol, first_open_time, last_open_time)"
    " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[],"
    " %s::timestamptz[])"
    " ON CONFLICT (market, interval, symbol) DO UPDATE SET"
    " first_open_time = least(s.first_open_time, EXCLUDED.first_open_time),"
    " last_open_time = greatest(s.last_open_time, EXCLUDED.last_open_time),"
    " updated_at = now()"
    " WHERE EXCLUDED.first_open_time < s.first_open_time"
    " OR EXCLUDED.last_open_time > s.last_open_time"
)


def ranges(frame: pl.DataFrame) -> pl.DataFrame:
    """market, interval, symbol, first, last of each series in a kline frame."""
    return (
        frame.group_by(["market", "interval", "symbol"])
        .agg(pl.col("open_time").min().alias("first"), pl.col("open_time").max().alias("last"))
        .sort(["market", "interval", "symbol"])  # one lock order: concurrent loaders
    )


def record(conn: psycopg.Connection, frame: pl.DataFrame) -> None:
    """Record the series of a kline frame in the catalogue, in the caller's transaction."""
    if frame.is_empty():
        return
    r = ranges(frame)
    conn.execute(
        _RECORD, [r[c].to_list() for c in ("market", "interval", "symbol", "first", "last")]
    )
