"""The Assets that chain the DAGs (data-aware scheduling), defined once.

raw klines --(klines_transform)--> marts --(model_training, gated)--> champion model
"""

from __future__ import annotations

from airflow.sdk import Asset

RAW_KLINES = Asset(
    name="raw.binance_klines",
    uri="klinehouse://warehouse/raw/binance_klines",
    group="warehouse",
    extra={"table": "raw.binance_klines"},
)
MARTS = Asset(
    name="marts",
    uri="klinehouse://warehouse/marts",
    group="warehouse",
    extra={"schema": "marts", "validated_by": "expectations.gate"},
)
CHAMPION_MODEL = Asset(
    name="ml.champion_model",
    uri="klinehouse://registry/champion",
    group="ml",
    extra={"table": "ml.model_registry"},
)
