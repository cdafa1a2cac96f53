"""Synthetic frames shaped like the training set, for the pure parts (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from klinehouse.features import LABEL_CLASS, LABEL_RETURN, NUMERIC_FEATURES


def frame(
    *,
    bars: int = 1500,
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "SOLUSDT"),
    signal: float = 0.0,
    seed: int = 0,
) -> pl.DataFrame:
    """Random features; the next return depends on `log_return_4` with strength `signal`."""
    rng = np.random.default_rng(seed)
    start = datetime(2022, 1, 1, tzinfo=UTC)
    times = [start + timedelta(hours=i) for i in range(bars)]
    parts = []
    for symbol in symbols:
        cols = {name: rng.normal(size=bars) for name in NUMERIC_FEATURES}
        noise = rng.normal(scale=0.01, size=bars)
        ret = signal * 0.01 * cols["log_return_4"] + noise
        parts.append(
            pl.DataFrame(
                {
                    "market": "spot",
                    "symbol": symbol,
                    "interval": "1h",
                    "open_time": times,
                    **cols,
                    LABEL_RETURN: ret,
                    LABEL_CLASS: ret > 0,
                }
            )
        )
    return (
        pl.concat(parts)
        .with_columns(pl.col("open_time").dt.replace_time_zone("UTC"))
        .sort("open_time", "symbol")
    )
