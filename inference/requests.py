"""Validation of request fields: each failure names the field it is about."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from inference.convert import PROTO_TO_MARKET, datetime_from_timestamp
from inference.errors import invalid, out_of_range
from klinehouse.klines import INTERVALS

MAX_PAGE = 5000  # candles per unary response and per stream page
DEFAULT_PAGE = 1000
MAX_SYMBOLS = 200
MAX_QUOTED = 64  # characters of a request value an error message may quote
_SYMBOL = re.compile(r"^[A-Z0-9_]{2,32}$")
_MONTH = timedelta(days=28)  # the shortest calendar month: bounds a range of 1M bars
# The times the service answers for: Binance's history fits well inside, and every instant
# of it (and a day past it) is a Python datetime and a PostgreSQL timestamptz.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_NANOS = 1_000_000_000


@dataclass(frozen=True)
class Series:
    market: str
    market_proto: int
    interval: str


@dataclass(frozen=True)
class CandleRange:
    series: Series
    symbol: str
    start: datetime
    end: datetime


def quoted(value: str) -> str:
    """`value` as an error message may show it: repr of at most MAX_QUOTED characters."""
    if len(value) <= MAX_QUOTED:
        return repr(value)
    return f"{value[:MAX_QUOTED]!r}... ({len(value)} characters)"


def parse_time(ts: Timestamp, field: str) -> datetime:
    """A request Timestamp as a UTC datetime within [EARLIEST, LATEST)."""
    if not 0 <= ts.nanos < _NANOS:
        raise invalid(field, f"nanos {ts.nanos} is not within 0..{_NANOS - 1}")
    if not EARLIEST.timestamp() <= ts.seconds < LATEST.timestamp():
        raise out_of_range(
            field,
            f"{ts.seconds} seconds since the epoch is outside "
            f"{EARLIEST.date().isoformat()} .. {LATEST.date().isoformat()}",
        )
    return datetime_from_timestamp(ts)


def interval_step(interval: str) -> timedelta:
    """The length of a bar (28 days for the calendar month 1M, the shortest it can be)."""
    return INTERVALS[interval] or _MONTH


def parse_series(market: int, interval: str) -> Series:
    if market not in PROTO_TO_MARKET:
        raise invalid("market", f"unknown market value {market}")
    if interval not in INTERVALS:
        shown = quoted(interval) if interval else "'(empty)'"
        raise invalid("interval", f"unknown interval {shown}: one of {', '.join(INTERVALS)}")
    return Series(PROTO_TO_MARKET[market], market or 1, interval)


def parse_symbol(symbol: str, field: str = "symbol") -> str:
    value = symbol.strip().upper()
    if not _SYMBOL.match(value):
        raise invalid(
            field, f"{quoted(symbol)} is not a Binance symbol (like BTCUSDT or BTCUSD_PERP)"
        )
    return value


def parse_symbols(symbols: Sequence[str], *, required: bool) -> list[str]:
    if len(symbols) > MAX_SYMBOLS:
        raise invalid("symbols", f"{len(symbols)} symbols; at most {MAX_SYMBOLS} per call")
    values = [parse_symbol(s, "symbols") for s in symbols]
    if required and not values:
        raise invalid("symbols", "name at least one symbol")
    return list(dict.fromkeys(values))


def parse_range(
    *,
    has_start: bool,
    start: Timestamp,
    has_end: bool,
    end: Timestamp,
    day: str,
    now: datetime | None = None,
) -> tuple[datetime, datetime]:
    """[start, end) from a start/end pair (end defaults to now) or one UTC date."""
    if day:
        if has_start or has_end:
            raise invalid("date", "give either date or start_time/end_time, not both")
        try:
            d = date.fromisoformat(day)
        except ValueError:
            raise invalid("date", f"{quoted(day)} is not a date YYYY-MM-DD") from None
        first = datetime(d.year, d.month, d.day, tzinfo=UTC)
        if not EARLIEST <= first < LATEST:
            raise out_of_range(
                "date",
                f"{d.isoformat()} is outside {EARLIEST.date().isoformat()} .. "
                f"{LATEST.date().isoformat()}",
            )
        return first, first + timedelta(days=1)
    if not has_start:
        raise invalid("start_time", "give start_time (and end_time), or date")
    first = parse_time(start, "start_time")
    last = parse_time(end, "end_time") if has_end else (now or datetime.now(UTC))
    if first >= last:
        raise invalid(
            "start_time",
            f"start_time {first.isoformat()} is not before end_time {last.isoformat()}",
        )
    return first, last


def check_unary_size(candle_range: CandleRange) -> None:
    step = interval_step(candle_range.series.interval)
    bars = (candle_range.end - candle_range.start) // step
    if bars > MAX_PAGE:
        raise out_of_range(
            "end_time",
            f"the range spans {bars} {candle_range.series.interval} bars; GetCandles returns at "
            f"most {MAX_PAGE}: narrow it or use StreamCandleHistory",
        )


def parse_page_size(page_size: int) -> int:
    if page_size < 0 or page_size > MAX_PAGE:
        raise out_of_range(
            "page_size", f"{page_size} is not within 1..{MAX_PAGE} (0 means {DEFAULT_PAGE})"
        )
    return page_size or DEFAULT_PAGE
