"""Binance websocket kline frames -> validated kline events -> kline frames.

A frame is checked completely when it arrives, so that a malformed one is
skipped alone (counted, never stopping the ingester) and a batch of events can
always be converted: decimals are kept as the exact strings Binance sent and
cast once per batch into the kline schema's Decimal (never through float).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl

from klinehouse import klines

# Plain decimal text with at most the schema's scale: anything finer would be rounded by
# the cast, and exponents or NaN are not what Binance sends.
_DECIMAL = re.compile(rf"^-?\d+(\.\d{{1,{klines.DECIMAL_SCALE}}})?$")
# websocket field -> kline column, for the decimal values of `k`
_DECIMAL_FIELDS: tuple[tuple[str, str], ...] = (
    ("o", "open"),
    ("h", "high"),
    ("l", "low"),
    ("c", "close"),
    ("v", "volume"),
    ("q", "quote_volume"),
    ("V", "taker_buy_base_volume"),
    ("Q", "taker_buy_quote_volume"),
)
Series = tuple[str, str]  # (symbol, interval)


class MalformedMessage(ValueError):
    """A frame that is not a well-formed kline event of a subscribed stream; says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class KlineEvent:
    symbol: str
    interval: str
    open_ms: int
    close_ms: int
    closed: bool
    trades: int
    decimals: tuple[str, ...]  # in _DECIMAL_FIELDS order, exactly as sent

    @property
    def series(self) -> Series:
        return (self.symbol, self.interval)


def stream_name(symbol: str, interval: str) -> str:
    """Binance's stream name: lower-case symbol, interval as is (1m and 1M differ)."""
    return f"{symbol.lower()}@kline_{interval}"


def combined_stream_url(base_url: str, streams: Sequence[str]) -> str:
    return f"{base_url.rstrip('/')}/stream?streams={'/'.join(streams)}"


def parse_frame(frame: str | bytes, subscribed: frozenset[str]) -> KlineEvent:
    """One combined-stream frame -> KlineEvent, or MalformedMessage naming what is wrong.

    Every frame must be a kline event of a subscribed stream with integer times; a
    closed one must also carry exact decimals (plain text, at most 8 decimals)."""
    try:
        message = json.loads(frame)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedMessage("not_json", f"{exc}; frame starts {_head(frame)}") from None
    if not isinstance(message, dict) or "data" not in message or "stream" not in message:
        raise MalformedMessage("unexpected", f"not a combined-stream event: {_head(frame)}")
    stream, data = message["stream"], message["data"]
    if stream not in subscribed:
        raise MalformedMessage("unexpected", f"event of a stream not subscribed: {stream!r}")
    if (
        not isinstance(data, dict)
        or data.get("e") != "kline"
        or not isinstance(data.get("k"), dict)
    ):
        raise MalformedMessage("unexpected", f"{stream}: not a kline event: {_head(frame)}")
    k = data["k"]
    try:
        symbol, interval = str(k["s"]), str(k["i"])
        open_ms, close_ms, closed, trades = k["t"], k["T"], k["x"], k["n"]
        decimals = tuple(k[field] for field, _ in _DECIMAL_FIELDS)
    except KeyError as exc:
        raise MalformedMessage("malformed", f"{stream}: kline lacks field {exc}") from None
    if stream_name(symbol, interval) != stream:
        raise MalformedMessage("malformed", f"{stream}: carries {symbol} {interval}")
    for value, name in ((open_ms, "t"), (close_ms, "T"), (trades, "n")):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise MalformedMessage("malformed", f"{stream}: field {name!r} is {value!r}")
    if not isinstance(closed, bool):
        raise MalformedMessage("malformed", f"{stream}: field 'x' is {closed!r}")
    # Forming updates (two of three frames) are never stored: their values need no check.
    if closed:
        for value, (field, _) in zip(decimals, _DECIMAL_FIELDS, strict=True):
            if not isinstance(value, str) or not _DECIMAL.match(value):
                raise MalformedMessage("malformed", f"{stream}: field {field!r} is {value!r}")
    return KlineEvent(symbol, interval, open_ms, close_ms, closed, trades, decimals)


def _head(frame: str | bytes) -> str:
    text = frame if isinstance(frame, str) else frame[:80].decode("utf-8", "replace")
    return repr(text[:80])


def to_frame(events: Iterable[KlineEvent], *, market: str, source: str = "stream") -> pl.DataFrame:
    """Closed kline events -> a frame in the kline schema (exact decimals)."""
    rows = list(events)
    columns: dict[str, list[object]] = {
        "symbol": [e.symbol for e in rows],
        "interval": [e.interval for e in rows],
        "open_time": [e.open_ms for e in rows],
        "close_time": [e.close_ms for e in rows],
        "trades": [e.trades for e in rows],
    }
    for i, (_, name) in enumerate(_DECIMAL_FIELDS):
        columns[name] = [e.decimals[i] for e in rows]
    raw = pl.DataFrame(
        columns,
        schema={
            "symbol": pl.String,
            "interval": pl.String,
            "open_time": pl.Int64,
            "close_time": pl.Int64,
            "trades": pl.Int64,
            **{name: pl.String for _, name in _DECIMAL_FIELDS},
        },
    )
    schema = klines.polars_schema()
    ms_to_time = [
        pl.from_epoch(pl.col(c), time_unit="ms")
        .cast(klines.TIMESTAMP.base_type())  # type: ignore[attr-defined]
        .dt.replace_time_zone("UTC")
        .alias(c)
        for c in ("open_time", "close_time")
    ]
    return raw.with_columns(
        *ms_to_time,
        *(pl.col(name).cast(schema[name]) for _, name in _DECIMAL_FIELDS),
        market=pl.lit(market),
        source=pl.lit(source),
    ).select(klines.COLUMN_NAMES)
