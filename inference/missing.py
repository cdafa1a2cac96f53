"""Why a read found nothing: an unknown symbol, a symbol without this interval, or a
series without features yet. One `check_series` query per miss, none on a hit."""

from __future__ import annotations

from inference.errors import ServiceError, invalid, precondition
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


async def no_candles(store: Store, series: Series, symbol: str) -> ServiceError | None:
    """The error for a read of `symbol` that returned no candles; None when the series
    exists (an empty range of a known series is an empty answer, not an error)."""
    check = await store.check_series(series.market, symbol)
    return None if _has_series(check, series) else _unknown(check, series, symbol)


async def no_features(store: Store, series: Series, symbol: str) -> ServiceError:
    """The error for a series whose latest features are missing."""
    check = await store.check_series(series.market, symbol)
    if _has_series(check, series):
        return precondition(
            f"{symbol} {series.interval} has candles but no features yet "
            "(too little history, or the marts are not built)"
        )
    return _unknown(check, series, symbol)


async def unknown_symbol(store: Store, market: str, symbol: str, field: str) -> ServiceError | None:
    """INVALID_ARGUMENT on `field` when the market has no candles of `symbol` at all."""
    check = await store.check_series(market, symbol)
    if check.symbol_known:
        return None
    return invalid(field, f"no candles of {symbol!r} in market {market}")
