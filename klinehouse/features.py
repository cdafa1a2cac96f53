"""The one list of model features and labels, shared by dbt's contract tests,
training and inference (the SQL definitions live in the dbt macro
`candle_features`; this is the list the model sees, in order)."""

from __future__ import annotations

from typing import Final

NUMERIC_FEATURES: Final = (
    "log_return_1",
    "log_return_4",
    "log_return_24",
    "volatility_24",
    "rsi_14",
    "volume_zscore_24",
    "taker_buy_ratio",
    "range_pct",
    "hour_of_day",
    "day_of_week",
    "btc_log_return_1",
)
CATEGORICAL_FEATURES: Final = ("symbol",)
FEATURES: Final = NUMERIC_FEATURES + CATEGORICAL_FEATURES

LABEL_CLASS: Final = "target_up"
LABEL_RETURN: Final = "target_log_return_1"
LABEL_HORIZON_BARS: Final = 1  # labels look one bar ahead: the purge between folds is at least this
# The horizons of `marts.candle_labels` (its SQL's `horizons` is a copy, checked by the column
# tests): a label at bar t over h bars ends at bar t+h's close, so a fold's purge must be >= h.
LABEL_HORIZONS: Final = (1, 4, 24)


def label_return(horizon: int) -> str:
    """ln(close_{t+h} / close_t)."""
    return f"target_log_return_{horizon}"


def label_class(horizon: int) -> str:
    """close_{t+h} > close_t."""
    return LABEL_CLASS if horizon == 1 else f"{LABEL_CLASS}_{horizon}"


LABELS: Final = tuple(name for h in LABEL_HORIZONS for name in (label_return(h), label_class(h)))
# How many bars before bar t its features read: log_return_24 (close 24 bars back) and
# volatility_24 (24 one-bar returns, the oldest from the close 24 bars back) reach bar
# t-24, i.e. 25 contiguous closes; rsi_14 reaches t-14, volume_zscore_24 t-23. The
# incremental features read this many bars before the first recomputed one, and a series
# is warmed up this many bars after its first. dbt's var `feature_lookback_bars`
# (dbt_project.yml) is a copy that tests/transform/test_project.py keeps equal.
FEATURE_LOOKBACK_BARS: Final = 24
