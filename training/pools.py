"""Quantized CatBoost pools from a `TrainingMatrix`, and the fits on them.

A pool is built from the matrix's float32 rows (`catboost.FeaturesData`: no
float64 copy, no pandas), quantized at once (one byte a feature value) and saved in
CatBoost's quantized format to a temporary file; CatBoost's raw float copy goes with
the raw pool. `quantized_files` writes every pool a training needs (one per label,
each with its validation pool, all on the first fit pool's borders) before any fit,
so that the caller can drop the matrix's features (`TrainingMatrix.drop_features`)
and then load one label's pools at a time: during a fit, memory holds that label's
quantized pools and CatBoost's own working set, not the float matrix.

The models are the same as `training.models.fit_classifier` / `fit_regressor` fit
(same parameters, same feature names and order), and predict from an ordinary frame
through `training.models.predict_up` / `predict_return`.
"""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from catboost import CatBoostClassifier, CatBoostRegressor, FeaturesData, Pool

from klinehouse.features import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES
from training.matrix import TrainingMatrix
from training.models import ModelConfig, _params

BORDER_COUNT = 254  # CatBoost's CPU default: the same borders its own fit would compute

if tuple(FEATURES) != (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES):  # FeaturesData's order
    raise RuntimeError("training.pools expects the numeric features first, then the categorical")


def _raw_pool(matrix: TrainingMatrix, rows: slice, label: np.ndarray) -> Pool:
    if not matrix.has_features:
        raise RuntimeError("the matrix's features were dropped: quantize before drop_features")
    data = FeaturesData(
        num_feature_data=matrix.numeric[rows],  # a view: rows are a contiguous range
        cat_feature_data=matrix.symbol_bytes(rows),
        num_feature_names=list(NUMERIC_FEATURES),
        cat_feature_names=list(CATEGORICAL_FEATURES),
    )
    # the label as float32 once (CatBoost's own type for it); a view when it already is
    return Pool(data, label=np.asarray(label[rows], dtype=np.float32))


def save_quantized(
    matrix: TrainingMatrix,
    rows: slice,
    label: np.ndarray,
    path: Path,
    *,
    borders: Path | None = None,
    save_borders: Path | None = None,
) -> None:
    """The quantized pool of `rows` labelled by `label`, saved at `path`; `borders` from
    another pool's `save_borders`, else computed here."""
    raw = _raw_pool(matrix, rows, label)
    if borders is not None:
        raw.quantize(input_borders=str(borders))
    else:
        raw.quantize(border_count=BORDER_COUNT)
    if save_borders is not None:
        raw.save_quantization_borders(str(save_borders))
    raw.save(str(path))
    del raw
    gc.collect()  # CatBoost's raw float copy goes with the raw pool


def load_quantized(path: Path) -> Pool:
    return Pool(f"quantized://{path}")


@dataclass(frozen=True)
class PoolFiles:
    """One label's quantized fit pool and, when there is one, its validation pool."""

    fit: Path
    validation: Path | None

    def load(self) -> tuple[Pool, Pool | None]:
        val = load_quantized(self.validation) if self.validation is not None else None
        return load_quantized(self.fit), val


@contextmanager
def quantized_files(
    matrix: TrainingMatrix, fit: slice, validation: slice | None, labels: Sequence[np.ndarray]
) -> Iterator[list[PoolFiles]]:
    """The quantized (fit, validation) pools of each label, saved in a temporary folder
    that lives as long as the context; every pool on the borders of the first fit pool
    (the borders depend on the features only, so each label's are the same)."""
    has_validation = validation is not None and validation.stop > validation.start
    with tempfile.TemporaryDirectory(prefix="klinehouse-pools-") as tmp:
        folder = Path(tmp)
        borders = folder / "borders.tsv"
        files = []
        for k, label in enumerate(labels):
            fit_path = folder / f"fit-{k}.quantized"
            first = k == 0
            save_quantized(
                matrix,
                fit,
                label,
                fit_path,
                borders=None if first else borders,
                save_borders=borders if first else None,
            )
            val_path = None
            if has_validation:
                assert validation is not None
                val_path = folder / f"validation-{k}.quantized"
                save_quantized(matrix, validation, label, val_path, borders=borders)
            files.append(PoolFiles(fit_path, val_path))
        yield files


def quantized_pool(
    matrix: TrainingMatrix,
    rows: slice,
    label: np.ndarray,
    *,
    borders: Path | None = None,
    save_borders: Path | None = None,
) -> Pool:
    """The quantized pool of `rows` labelled by `label` (see `save_quantized`), in memory."""
    with tempfile.TemporaryDirectory(prefix="klinehouse-pool-") as tmp:
        path = Path(tmp) / "pool.quantized"
        save_quantized(matrix, rows, label, path, borders=borders, save_borders=save_borders)
        return load_quantized(path)


def fit_pools(
    matrix: TrainingMatrix, fit: slice, validation: slice | None, label: np.ndarray
) -> tuple[Pool, Pool | None]:
    """Quantized (fit, validation) pools, the validation on the fit rows' borders."""
    with quantized_files(matrix, fit, validation, [label]) as (files,):
        return files.load()


def fit_on(
    model: CatBoostClassifier | CatBoostRegressor,
    pools: tuple[Pool, Pool | None],
    config: ModelConfig,
) -> None:
    """`model` fitted on the fit pool, stopping early on the validation pool if any."""
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


def classifier(config: ModelConfig) -> CatBoostClassifier:
    """The CatBoost classifier of `training.models.fit_classifier`, unfitted."""
    return CatBoostClassifier(loss_function="Logloss", **_params(config))  # type: ignore[arg-type]


def regressor(config: ModelConfig) -> CatBoostRegressor:
    """The CatBoost regressor of `training.models.fit_regressor`, unfitted."""
    return CatBoostRegressor(loss_function="RMSE", **_params(config))  # type: ignore[arg-type]


def fit_from_files(
    model: CatBoostClassifier | CatBoostRegressor, files: PoolFiles, config: ModelConfig
) -> None:
    """`model` fitted on one label's saved pools, loaded for this fit only."""
    pools = files.load()
    fit_on(model, pools, config)
    del pools
    gc.collect()


def fit_classifier_quantized(
    matrix: TrainingMatrix,
    fit: slice,
    validation: slice | None,
    config: ModelConfig,
    *,
    label: np.ndarray | None = None,
) -> CatBoostClassifier:
    """`training.models.fit_classifier` on the matrix's rows (labelled `label`, else
    `matrix.up`), through quantized pools."""
    model = classifier(config)
    fit_on(model, fit_pools(matrix, fit, validation, matrix.up if label is None else label), config)
    return model


def fit_regressor_quantized(
    matrix: TrainingMatrix, fit: slice, validation: slice | None, config: ModelConfig
) -> CatBoostRegressor:
    """`training.models.fit_regressor` on the matrix's rows, through quantized pools."""
    model = regressor(config)
    fit_on(model, fit_pools(matrix, fit, validation, matrix.log_return), config)
    return model


@dataclass(frozen=True)
class FrameFits:
    """The CatBoost models of one training set (`fit_frame`): the regressor on the next
    log return and a classifier per label column; `fit` / `validation` are the rows
    (ranges of the frame) they were fitted and stopped on."""

    regressor: CatBoostRegressor
    classifiers: dict[str, CatBoostClassifier]
    fit: slice
    validation: slice


def fit_frame(
    frame: pl.DataFrame,
    classifier_labels: Sequence[str],
    config: ModelConfig,
    *,
    fraction: float,
    gap_bars: int,
) -> FrameFits:
    """`training.models.fit_regressor` and a `fit_classifier` per label of
    `classifier_labels` on a labelled frame sorted by open time, split as
    `training.folds.holdout` splits it, through a float32 matrix and quantized pools:
    every pool saved first, then the matrix's features dropped, each fit holding its own
    pools only (the frame itself is the caller's)."""
    matrix = TrainingMatrix.from_frame(frame)
    fit, validation = matrix.holdout(fraction=fraction, gap_bars=gap_bars)
    names = list(dict.fromkeys(classifier_labels))
    labels = [matrix.log_return]
    labels += [frame.get_column(n).cast(pl.Float32).to_numpy() for n in names]
    with quantized_files(matrix, fit, validation, labels) as files:
        matrix.drop_features()
        del labels
        fitted_regressor = regressor(config)
        fit_from_files(fitted_regressor, files[0], config)
        classifiers = {}
        for name, saved in zip(names, files[1:], strict=True):
            classifiers[name] = classifier(config)
            fit_from_files(classifiers[name], saved, config)
    return FrameFits(fitted_regressor, classifiers, fit, validation)
