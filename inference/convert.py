"""Conversions between the wire types of klinehouse.v1 and Python values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from klinehouse.klines import MARKETS
from klinehouse.v1 import candle_pb2

# Each market is the proto enum value MARKET_<NAME> (tests/inference/test_protos.py: and no other).
MARKET_TO_PROTO: dict[str, int] = {
    m: candle_pb2.Market.Value(f"MARKET_{m.upper()}") for m in MARKETS
}
PROTO_TO_MARKET: dict[int, str] = {v: k for k, v in MARKET_TO_PROTO.items()}
PROTO_TO_MARKET[candle_pb2.MARKET_UNSPECIFIED] = "spot"

# The SELECT list that `candle_from_row` reads: prices as exact numeric text (PostgreSQL
# never prints numeric in exponent form) and times as epoch microseconds.
CANDLE_SELECT = (
    "symbol, (extract(epoch FROM open_time) * 1000000)::bigint, "
    "(extract(epoch FROM close_time) * 1000000)::bigint, "
    "open::text, high::text, low::text, close::text, volume::text, "
    "coalesce(quote_volume::text, ''), coalesce(trade_count, -1), "
    "coalesce(taker_buy_base_volume::text, ''), coalesce(taker_buy_quote_volume::text, '')"
)


def timestamp_from_us(us: int) -> Timestamp:
    seconds, micros = divmod(us, 1_000_000)
    return Timestamp(seconds=seconds, nanos=micros * 1000)


def datetime_from_timestamp(ts: Timestamp) -> datetime:
    return datetime.fromtimestamp(ts.seconds, UTC) + timedelta(microseconds=ts.nanos // 1000)


def duration_from_timedelta(value: timedelta) -> Duration:
    d = Duration()
    d.FromTimedelta(value)
    return d


def candle_from_row(row: tuple[Any, ...], market: int, interval: str) -> candle_pb2.Candle:
    """One row of `CANDLE_SELECT` as a Candle message (times set in place: half the cost
    of building Timestamp messages and copying them in)."""
    candle = candle_pb2.Candle(
        market=market,  # type: ignore[arg-type]
        symbol=row[0],
        interval=interval,
        open=row[3],
        high=row[4],
        low=row[5],
        close=row[6],
        volume=row[7],
        quote_volume=row[8],
        trades=row[9],
        taker_buy_base_volume=row[10],
        taker_buy_quote_volume=row[11],
    )
    seconds, micros = divmod(row[1], 1_000_000)
    candle.open_time.seconds, candle.open_time.nanos = seconds, micros * 1000
    seconds, micros = divmod(row[2], 1_000_000)
    candle.close_time.seconds, candle.close_time.nanos = seconds, micros * 1000
    return candle
