"""Synthetic klines for tests and benchmarks: random walks, generated vectorised.

One call builds every series at once with numpy and polars (no Python loop per row),
so producing millions of rows costs a fraction of loading them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

START = datetime(2024, 1, 1, tzinfo=UTC)
_SECONDS = {"1m": 60, "5m": 300, "1h": 3600}


def symbols(series: int, offset: int = 0) -> list[str]:
    """Series offset..offset+series-1: BTCUSDT first (the cross-asset feature), then
    SYM0001USDT, SYM0002USDT, …"""
    return [f"SYM{s:04d}USDT" if s else "BTCUSDT" for s in range(offset, offset + series)]


def random_walk_klines(
    series: int,
    bars: int,
    *,
    first: int = 0,
    interval: str = "1m",
    start: datetime = START,
    seed: int = 7,
    series_offset: int = 0,
) -> pl.DataFrame:
    """`series` series (numbers series_offset…) of `bars` valid klines each, bar numbers
    first..first+bars-1 after `start` (the same bar number always gets the same open_time)."""
    step = _SECONDS[interval]
    rng = np.random.default_rng([seed, first, series_offset])
    n = series * bars
    level = np.repeat(100.0 * (np.arange(series_offset, series_offset + series) + 1), bars)
    walk = rng.normal(0, 0.001, (series, bars)).cumsum(axis=1).ravel()
    close = np.round(level * np.exp(walk), 4)
    open_ = np.round(close * (1 + rng.normal(0, 0.0005, n)), 4)
    spread = np.abs(rng.normal(0, 0.001, n))
    high = np.round(np.maximum(open_, close) * (1 + spread), 4) + 0.0001
    low = np.round(np.minimum(open_, close) * (1 - spread), 4) - 0.0001
    volume = np.round(rng.gamma(2.0, 5.0, n), 4)
    taker = np.round(volume * rng.uniform(0.2, 0.8, n), 4)
    offsets = np.tile(np.arange(first, first + bars, dtype=np.int64) * step * 1000, series)
    start_ms = int(start.timestamp() * 1000)
    return pl.DataFrame(
        {
            "market": pl.Series([], dtype=pl.String).extend_constant("spot", n),
            "symbol": pl.Series(np.repeat(np.array(symbols(series, series_offset)), bars)),
            "interval": pl.Series([], dtype=pl.String).extend_constant(interval, n),
            "open_time": pl.Series(start_ms + offsets).cast(pl.Datetime("ms", "UTC")),
            "close_time": pl.Series(start_ms + offsets + step * 1000 - 1).cast(
                pl.Datetime("ms", "UTC")
            ),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "quote_volume": np.round(volume * close, 4),
            "trades": rng.integers(100, 10_000, n),
            "taker_buy_base_volume": taker,
            "taker_buy_quote_volume": np.round(taker * close, 4),
            "source": pl.Series([], dtype=pl.String).extend_constant("archive", n),
        }
    )
