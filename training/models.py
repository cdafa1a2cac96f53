"""The candidate models and the baselines they must beat.

Models: a CatBoost classifier on `target_up` and a CatBoost regressor on
`target_log_return_1`, pooled across symbols with the symbol as a categorical
feature (CatBoost's ordered target statistics are computed on the training rows
only). Baselines, each fitted on the training rows only: majority class (the
training base rate as a constant probability), momentum (the training frequency
of an up bar after an up / a down bar), and buy-and-hold (a position, no forecast).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from catboost import CatBoostClassifier, CatBoostRegressor, Pool

from klinehouse.features import CATEGORICAL_FEATURES, FEATURES, LABEL_CLASS, LABEL_RETURN
from training.model_config import ModelConfig as ModelConfig  # callers import it from here too


def feature_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """The model's input, in the one feature order of `klinehouse.features`."""
    return frame.select(
        *(pl.col(c).cast(pl.Float64) for c in FEATURES if c not in CATEGORICAL_FEATURES),
        *(pl.col(c).cast(pl.String).fill_null("") for c in CATEGORICAL_FEATURES),
    ).select(FEATURES)


def pool(frame: pl.DataFrame, label: str | None = None) -> Pool:
    y = None
    if label is not None:
        y = frame.get_column(label).cast(pl.Float64).to_numpy()
    return Pool(feature_frame(frame), label=y, cat_features=list(CATEGORICAL_FEATURES))


def _params(config: ModelConfig) -> dict[str, object]:
    return {
        "iterations": config.iterations,
        "depth": config.depth,
        "learning_rate": config.learning_rate,
        "l2_leaf_reg": config.l2_leaf_reg,
        "random_seed": config.seed,
        "thread_count": config.thread_count,
        "has_time": config.has_time,
        "allow_writing_files": False,
        "verbose": False,
    }


def fit_classifier(
    fit: pl.DataFrame,
    validation: pl.DataFrame | None,
    config: ModelConfig,
    *,
    label: str = LABEL_CLASS,
) -> CatBoostClassifier:
    model = CatBoostClassifier(loss_function="Logloss", **_params(config))  # type: ignore[arg-type]
    _fit(model, fit, validation, config, label)
    return model


def fit_regressor(
    fit: pl.DataFrame, validation: pl.DataFrame | None, config: ModelConfig
) -> CatBoostRegressor:
    model = CatBoostRegressor(loss_function="RMSE", **_params(config))  # type: ignore[arg-type]
    _fit(model, fit, validation, config, LABEL_RETURN)
    return model


def _fit(
    model: CatBoostClassifier | CatBoostRegressor,
    fit: pl.DataFrame,
    validation: pl.DataFrame | None,
    config: ModelConfig,
    label: str,
) -> None:
    if validation is not None and validation.height:
        model.fit(
            pool(fit, label),
            eval_set=pool(validation, label),
            early_stopping_rounds=config.early_stopping_rounds,
            use_best_model=True,
        )
    else:
        model.fit(pool(fit, label))


def predict_up(model: CatBoostClassifier, frame: pl.DataFrame) -> np.ndarray:
    return np.asarray(model.predict_proba(pool(frame))[:, 1], dtype=np.float64)


def predict_return(model: CatBoostRegressor, frame: pl.DataFrame) -> np.ndarray:
    return np.asarray(model.predict(pool(frame)), dtype=np.float64)


@dataclass(frozen=True)
class Baselines:
    """Probabilities fitted on a training set, applied to any other rows."""

    base_rate: float
    up_after_up: float
    up_after_down: float

    @classmethod
    def fit(cls, train: pl.DataFrame, label: str = LABEL_CLASS) -> Baselines:
        """On `label` (the next bar's direction, or another candidate's target)."""
        y = train.get_column(label).cast(pl.Float64).to_numpy()
        up_before = train.get_column("log_return_1").fill_null(0.0).to_numpy() > 0
        base = float(y.mean()) if len(y) else 0.5
        after_up, after_down = y[up_before], y[~up_before]
        return cls(
            base_rate=base,
            up_after_up=float(after_up.mean()) if len(after_up) else base,
            up_after_down=float(after_down.mean()) if len(after_down) else base,
        )

    def majority(self, frame: pl.DataFrame) -> np.ndarray:
        return np.full(frame.height, self.base_rate)

    def momentum(self, frame: pl.DataFrame) -> np.ndarray:
        up = frame.get_column("log_return_1").fill_null(0.0).to_numpy() > 0
        return np.where(up, self.up_after_up, self.up_after_down)
