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
LABELS: Final = (LABEL_RETURN, LABEL_CLASS)
LABEL_HORIZON_BARS: Final = 1  # labels look one bar ahead: the purge between folds is at least this
# How many bars before bar t its features read: log_return_24 (close 24 bars back) and
# volatility_24 (24 one-bar returns, the oldest from the close 24 bars back) reach bar
# t-24, i.e. 25 contiguous closes; rsi_14 reaches t-14, volume_zscore_24 t-23. The
# incremental features read this many bars before the first recomputed one, and a series
# is warmed up this many bars after its first. dbt's var `feature_lookback_bars`
# (dbt_project.yml) is a copy that tests/transform/test_project.py keeps equal.
FEATURE_LOOKBACK_BARS: Final = 24
