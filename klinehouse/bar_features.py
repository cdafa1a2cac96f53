"""The model features of a series' newest bar, computed in Python from its last bars.

The serving path reads a series' last `FEATURE_LOOKBACK_BARS` + 1 clean bars by key
(`ORDER BY open_time DESC LIMIT n` through raw's primary key) and computes the
newest bar's features here, instead of asking a view that aggregates all of raw.
The formulas are those of the dbt macro `candle_features` (its SQL is the
definition training reads); this is their one Python copy, in the order of
`klinehouse.features.NUMERIC_FEATURES`, and tests/inference/test_serving_reads.py
keeps it equal to `marts.candle_features` bar for bar. SQL semantics are kept: a
window is valid only when its first bar lies exactly k intervals back, otherwise the
feature is None (NULL), never 0; aggregates skip NULLs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from klinehouse.features import FEATURE_LOOKBACK_BARS, NUMERIC_FEATURES
from klinehouse.klines import INTERVALS

BARS_NEEDED = FEATURE_LOOKBACK_BARS + 1  # the newest bar and the lookback before it
BTC = "BTCUSDT"


@dataclass(frozen=True)
class Bar:
    """One clean bar as the features read it (prices as float8, like the macro's casts)."""

    open_us: int
    high: float
    low: float
    close: float
    volume: float
    taker_buy_base_volume: float | None


# each fixed interval's length in µs (None: the calendar month 1M)
_STEP_US: dict[str, int | None] = {
    name: None if step is None else step // timedelta(microseconds=1)
    for name, step in INTERVALS.items()
}


def add_bars(open_us: int, n: int, interval: str) -> int:
    """The open time (epoch µs) `n` bars after `open_us` (the macro's add_bars)."""
    step = _STEP_US[interval]
    if step is not None:
        return open_us + n * step
    t = datetime.fromtimestamp(open_us / 1e6, UTC)
    months = t.year * 12 + t.month - 1 + n
    shifted = t.replace(year=months // 12, month=months % 12 + 1)
    return int(shifted.timestamp()) * 1_000_000 + shifted.microsecond


def _stddev_samp(values: Sequence[float | None]) -> float | None:
    """stddev_samp in two float passes (statistics.stdev's exact fractions cost a
    millisecond per series on the serving path; the result agrees to ~1e-15)."""
    present = [v for v in values if v is not None]
    if len(present) < 2:
        return None
    mean = math.fsum(present) / len(present)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in present) / (len(present) - 1))


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return math.fsum(present) / len(present) if present else None


def btc_return(bars: Sequence[Bar], open_us: int, interval: str) -> float | None:
    """BTCUSDT's log_return_1 at `open_us` from its clean bars (any order)."""
    by_time = {b.open_us: b.close for b in bars}
    now, before = by_time.get(open_us), by_time.get(add_bars(open_us, -1, interval))
    return None if now is None or before is None else math.log(now / before)


def newest_features(
    bars: Sequence[Bar], interval: str, btc_log_return_1: float | None
) -> tuple[float | None, ...]:
    """The numeric features of `bars[0]` (bars newest first, at most `BARS_NEEDED`
    used), in the order of NUMERIC_FEATURES; `btc_log_return_1` is BTCUSDT's
    log_return_1 at the same open time (`btc_return`)."""
    b = list(bars[:BARS_NEEDED])
    t = b[0].open_us

    def has(k: int) -> bool:
        return len(b) > k and b[k].open_us == add_bars(t, -k, interval)

    def has_1_at(j: int) -> bool:
        return len(b) > j + 1 and b[j + 1].open_us == add_bars(b[j].open_us, -1, interval)

    def log_return(k: int) -> float | None:
        return math.log(b[0].close / b[k].close) if has(k) else None

    linked = [has_1_at(j) for j in range(len(b))]  # bar j's previous bar is j + 1
    lr1 = [math.log(b[j].close / b[j + 1].close) if linked[j] else None for j in range(len(b))]
    change = [b[j].close - b[j + 1].close if linked[j] else None for j in range(len(b))]

    volatility = _stddev_samp(lr1[:24]) if has(24) else None
    rsi: float | None = None
    if has(14):
        gain = _mean([None if c is None else max(c, 0.0) for c in change[:14]])
        loss = _mean([None if c is None else max(-c, 0.0) for c in change[:14]])
        if loss == 0:
            rsi = 100.0
        elif gain is not None and loss is not None:
            rsi = 100 - 100 / (1 + gain / loss)
    zscore: float | None = None
    if has(23):
        volumes = [x.volume for x in b[:24]]
        std = _stddev_samp(volumes)
        mean = _mean(volumes)
        if std and mean is not None:
            zscore = (b[0].volume - mean) / std
    newest = b[0]
    tbb = newest.taker_buy_base_volume
    when = datetime.fromtimestamp(t / 1e6, UTC)
    values: dict[str, float | None] = {
        "log_return_1": lr1[0],
        "log_return_4": log_return(4),
        "log_return_24": log_return(24),
        "volatility_24": volatility,
        "rsi_14": rsi,
        "volume_zscore_24": zscore,
        "taker_buy_ratio": tbb / newest.volume if tbb is not None and newest.volume else None,
        "range_pct": (newest.high - newest.low) / newest.close if newest.close else None,
        "hour_of_day": float(when.hour),
        "day_of_week": float(when.isoweekday()),
        "btc_log_return_1": btc_log_return_1,
    }
    return tuple(values[name] for name in NUMERIC_FEATURES)
