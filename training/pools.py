"""Quantized CatBoost pools from a `TrainingMatrix`, and the fits on them.

A pool is built from the matrix's float32 rows (`catboost.FeaturesData`: no
float64 copy, no pandas), quantized at once (one byte a feature value), saved and
read back in CatBoost's quantized format, so that CatBoost's float copy of the
rows is gone before training starts. The validation pool is quantized with the
fit pool's borders. The models are the same as `training.models.fit_classifier` /
`fit_regressor` fit (same parameters, same feature names and order), and predict
from an ordinary frame through `training.models.predict_up` / `predict_return`.
"""

from __future__ import annotations

import gc
import tempfile
from pathlib import Path

import numpy as np
from catboost import CatBoostClassifier, CatBoostRegressor, FeaturesData, Pool

from klinehouse.features import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES
from training.matrix import TrainingMatrix
from training.models import ModelConfig, _params

BORDER_COUNT = 254  # CatBoost's CPU default: the same borders its own fit would compute

if tuple(FEATURES) != (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES):  # FeaturesData's order
    raise RuntimeError("training.pools expects the numeric features first, then the categorical")


def _raw_pool(matrix: TrainingMatrix, rows: slice, label: np.ndarray) -> Pool:
    data = FeaturesData(
        num_feature_data=matrix.numeric[rows],  # a view: rows are a contiguous range
        cat_feature_data=matrix.symbol_bytes(rows),
        num_feature_names=list(NUMERIC_FEATURES),
        cat_feature_names=list(CATEGORICAL_FEATURES),
    )
    return Pool(data, label=label[rows])


def quantized_pool(
    matrix: TrainingMatrix,
    rows: slice,
    label: np.ndarray,
    *,
    borders: Path | None = None,
    save_borders: Path | None = None,
) -> Pool:
    """The quantized pool of `rows` labelled by `label` (one of the matrix's label
    arrays); `borders` from another pool's `save_borders`, else computed here."""
    raw = _raw_pool(matrix, rows, label)
    if borders is not None:
        raw.quantize(input_borders=str(borders))
    else:
        raw.quantize(border_count=BORDER_COUNT)
    if save_borders is not None:
        raw.save_quantization_borders(str(save_borders))
    with tempfile.TemporaryDirectory(prefix="klinehouse-pool-") as tmp:
        path = Path(tmp) / "pool.quantized"
        raw.save(str(path))
        del raw
        gc.collect()  # CatBoost's raw float copy goes with the raw pool
        return Pool(f"quantized://{path}")


def fit_pools(
    matrix: TrainingMatrix, fit: slice, validation: slice | None, label: np.ndarray
) -> tuple[Pool, Pool | None]:
    """Quantized (fit, validation) pools, the validation on the fit rows' borders."""
    with tempfile.TemporaryDirectory(prefix="klinehouse-borders-") as tmp:
        borders = Path(tmp) / "borders.tsv"
        fit_pool = quantized_pool(matrix, fit, label, save_borders=borders)
        val_pool = None
        if validation is not None and validation.stop > validation.start:
            val_pool = quantized_pool(matrix, validation, label, borders=borders)
    return fit_pool, val_pool


def _fit(
    model: CatBoostClassifier | CatBoostRegressor,
    pools: tuple[Pool, Pool | None],
    config: ModelConfig,
) -> None:
    fit_pool, val_pool = pools
    if val_pool is not None:
        model.fit(
            fit_pool,
            eval_set=val_pool,
            early_stopping_rounds=config.early_stopping_rounds,
            use_best_model=True,
        )
    else:
        model.fit(fit_pool)


def fit_classifier_quantized(
    matrix: TrainingMatrix, fit: slice, validation: slice | None, config: ModelConfig
) -> CatBoostClassifier:
    """`training.models.fit_classifier` on the matrix's rows, through quantized pools."""
    model = CatBoostClassifier(loss_function="Logloss", **_params(config))  # type: ignore[arg-type]
    _fit(model, fit_pools(matrix, fit, validation, matrix.up), config)
    return model


def fit_regressor_quantized(
    matrix: TrainingMatrix, fit: slice, validation: slice | None, config: ModelConfig
) -> CatBoostRegressor:
    """`training.models.fit_regressor` on the matrix's rows, through quantized pools."""
    model = CatBoostRegressor(loss_function="RMSE", **_params(config))  # type: ignore[arg-type]
    _fit(model, fit_pools(matrix, fit, validation, matrix.log_return), config)
    return model
