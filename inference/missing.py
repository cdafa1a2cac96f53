"""Why a read found nothing: an unknown symbol, a symbol without this interval, a
range past the series' newest bar, or a series without bars yet. One `check_series`
query (a key lookup in the series catalogue) per miss, none on a hit."""

from __future__ import annotations

from datetime import UTC, datetime

from inference.convert import timestamp_from_us
from inference.errors import ServiceError, invalid, not_found, out_of_range
from inference.requests import Series
from inference.store import SeriesCheck, Store


def _unknown(check: SeriesCheck, series: Series, symbol: str) -> ServiceError:
    if not check.symbol_known:
        return invalid("symbol", f"no candles of {symbol!r} in market {series.market}")
    return invalid(
        "interval",
        f"{symbol} has no {series.interval} candles in {series.market}; "
        f"intervals available: {', '.join(check.intervals)}",
    )


def _has_series(check: SeriesCheck, series: Series) -> bool:
    return check.symbol_known and series.interval in check.intervals


async def no_candles(
    store: Store, series: Series, symbol: str, start: datetime | None = None
) -> ServiceError | None:
    """The error for a read of `symbol` that returned no candles: OUT_OF_RANGE when
    `start` lies past the series' newest bar; None when the series exists and the
    range is within it (an empty range of a known series is an empty answer)."""
    check = await store.check_series(series.market, symbol)
    if not _has_series(check, series):
        return _unknown(check, series, symbol)
    newest = check.newest(series.interval)
    if start is not None and newest is not None and start > _datetime(newest):
        return out_of_range(
            "start_time",
            f"{start.isoformat()} is past the newest {symbol} {series.interval} bar "
            f"({_datetime(newest).isoformat()})",
        )
    return None


def _datetime(us: int) -> datetime:
    return timestamp_from_us(us).ToDatetime(tzinfo=UTC)


async def no_features(store: Store, series: Series, symbol: str) -> ServiceError:
    """The error for a series whose latest features are missing: NOT_FOUND for a
    loaded series without a servable bar yet (none on the grid with valid OHLC)."""
    check = await store.check_series(series.market, symbol)
    if _has_series(check, series):
        return not_found(f"{symbol} {series.interval} has no servable bars yet")
    return _unknown(check, series, symbol)


async def unknown_symbol(store: Store, market: str, symbol: str, field: str) -> ServiceError | None:
    """INVALID_ARGUMENT on `field` when the market has no candles of `symbol` at all."""
    check = await store.check_series(market, symbol)
    if check.symbol_known:
        return None
    return invalid(field, f"no candles of {symbol!r} in market {market}")
