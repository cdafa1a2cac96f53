"""The candidate models of one (market, interval), compared on the same folds and features.

- `catboost_h1`: the current pair (CatBoost classifier on the next bar's direction; its
  CatBoost regressor on the next log return is fitted beside it, see `evaluate`).
- `catboost_h4`, `catboost_h24`: the CatBoost classifier on the direction 4 / 24 bars
  ahead (`marts.candle_labels`); the folds' purge must be at least the horizon.
- `catboost_fee_h4`: the CatBoost classifier on a fee-aware target: the move over the
  next 4 bars beats the round trip (a long entered and left at the fee pays
  (1 - fee)^2, so the target is r_4 > -2 ln(1 - fee)).
- `logistic_h1`: an L2-regularised logistic regression on standardised numeric
  features and the one-hot symbol: a simple challenger.

Every candidate outputs a probability; the advice thresholds are chosen for each on the
inner validation window. A target whose base rate is far from 1/2 (the fee-aware one)
has its threshold grid centred on its training base rate rather than on 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import polars as pl
from catboost import CatBoostClassifier

from klinehouse.errors import KlinehouseError
from klinehouse.features import (
    CATEGORICAL_FEATURES,
    LABEL_RETURN,
    NUMERIC_FEATURES,
    label_class,
    label_return,
)
from training.matrix import TrainingMatrix
from training.model_config import ModelConfig
from training.models import fit_classifier, predict_up

Family = Literal["catboost", "logistic"]


@dataclass(frozen=True)
class Candidate:
    name: str
    family: Family
    horizon: int = 1
    fee_aware: bool = False

    def target(self) -> str:
        """The label column this candidate predicts (see `add_targets` for fee-aware ones)."""
        return f"target_beats_fee_{self.horizon}" if self.fee_aware else label_class(self.horizon)

    def describe(self) -> str:
        what = (
            f"move over {self.horizon} bar(s) beats the round-trip fee"
            if self.fee_aware
            else f"up over {self.horizon} bar(s)"
        )
        family = "CatBoost" if self.family == "catboost" else "logistic regression (L2)"
        return f"{family}, P({what})"


CANDIDATES: dict[str, Candidate] = {
    c.name: c
    for c in (
        Candidate("catboost_h1", "catboost", 1),
        Candidate("catboost_h4", "catboost", 4),
        Candidate("catboost_h24", "catboost", 24),
        Candidate("catboost_fee_h4", "catboost", 4, fee_aware=True),
        Candidate("logistic_h1", "logistic", 1),
    )
}
DEFAULT_CANDIDATES: tuple[str, ...] = tuple(CANDIDATES)
REFERENCE = "catboost_h1"  # the current pair: its regressor and its leakage check


def resolve(names: tuple[str, ...]) -> list[Candidate]:
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown or not names:
        raise KlinehouseError(
            f"unknown candidate(s) {', '.join(unknown) or '(none given)'}:"
            f" expected some of {', '.join(CANDIDATES)}"
        )
    return [CANDIDATES[n] for n in dict.fromkeys(names)]


def fee_threshold(fee_rate: float) -> float:
    """The log return a round trip must beat: (1 - fee)^2 e^r > 1."""
    return -2.0 * math.log1p(-fee_rate)


def add_targets(frame: pl.DataFrame, candidates: list[Candidate], fee_rate: float) -> pl.DataFrame:
    """`frame` with the fee-aware targets the candidates need (from the return labels)."""
    extra = {
        c.target(): (pl.col(label_return(c.horizon)) > fee_threshold(fee_rate)).alias(c.target())
        for c in candidates
        if c.fee_aware
    }
    return frame.with_columns(*extra.values()) if extra else frame


def known_targets(
    frame: pl.DataFrame, candidates: list[Candidate], fee_rate: float
) -> pl.DataFrame:
    """The rows where every candidate's label is known (all candidates on the same rows:
    the longest horizon drops a series' last bars for all), with the fee-aware targets."""
    needed = {LABEL_RETURN} | {label_return(c.horizon) for c in candidates}
    needed |= {c.target() for c in candidates if not c.fee_aware}
    known = frame.filter(pl.all_horizontal(pl.col(n).is_not_null() for n in sorted(needed)))
    return add_targets(known, candidates, fee_rate)


def horizon(candidates: list[Candidate]) -> int:
    return max(c.horizon for c in candidates)


# ---------------------------------------------------------------- the linear challenger


@dataclass(frozen=True)
class LogisticModel:
    """Standardised numeric features (missing -> the training mean) and one-hot symbols."""

    features: tuple[str, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    symbols: tuple[str, ...]
    coefficients: tuple[float, ...]
    intercept: float

    def design(self, frame: pl.DataFrame) -> np.ndarray:
        x = frame.select(pl.col(c).cast(pl.Float64) for c in self.features).to_numpy()
        (symbol_col,) = CATEGORICAL_FEATURES
        return self.design_of(x, frame.get_column(symbol_col).to_numpy())

    def design_of(self, x: np.ndarray, symbols: np.ndarray) -> np.ndarray:
        """The design matrix of numeric rows `x` (in `features` order) and their symbols,
        written into one float64 array (no temporary of the matrix's size)."""
        k = len(self.features)
        out = np.empty((x.shape[0], k + len(self.symbols)), dtype=np.float64)
        numeric = out[:, :k]
        np.subtract(x, np.asarray(self.means), out=numeric)
        numeric /= np.asarray(self.scales)
        np.nan_to_num(numeric, copy=False, nan=0.0)
        for j, s in enumerate(self.symbols):
            out[:, k + j] = symbols == s
        return out

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        z = self.design(frame) @ np.asarray(self.coefficients) + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)

    def as_dict(self) -> dict[str, object]:
        return {
            "features": list(self.features),
            "means": list(self.means),
            "scales": list(self.scales),
            "symbols": list(self.symbols),
            "coefficients": list(self.coefficients),
            "intercept": self.intercept,
        }


LOGISTIC_C = 0.1  # the L2 penalty's inverse strength
LOGISTIC_MAX_ITER = 500


def fit_logistic(
    fit: pl.DataFrame, label: str, *, c: float = LOGISTIC_C, seed: int = 0
) -> LogisticModel:
    x = fit.select(pl.col(n).cast(pl.Float64) for n in NUMERIC_FEATURES).to_numpy()
    (symbol_col,) = CATEGORICAL_FEATURES
    y = fit.get_column(label).cast(pl.Int8).to_numpy()
    return fit_logistic_arrays(
        x, fit.get_column(symbol_col).to_numpy(), y, label=label, c=c, seed=seed
    )


def logistic_estimator(*, c: float = LOGISTIC_C, seed: int = 0) -> Any:
    """The scikit-learn estimator `fit_logistic` fits (unfitted)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=LOGISTIC_MAX_ITER, random_state=seed)


def fit_logistic_arrays(
    x: np.ndarray,
    symbols: np.ndarray,
    y: np.ndarray,
    *,
    label: str,
    c: float = LOGISTIC_C,
    seed: int = 0,
) -> LogisticModel:
    """`fit_logistic` on numeric rows `x` (`NUMERIC_FEATURES` order), their symbols and 0/1
    labels `y` (`label` names them in errors)."""
    shell = logistic_shell(x, symbols)
    if len(np.unique(y)) < 2:
        raise KlinehouseError(f"{label} takes one value only on the fit rows: nothing to learn")
    model = logistic_estimator(c=c, seed=seed)
    model.fit(shell.design_of(x, symbols), y)
    return LogisticModel(
        shell.features,
        shell.means,
        shell.scales,
        shell.symbols,
        tuple(float(v) for v in model.coef_[0]),
        float(model.intercept_[0]),
    )


def logistic_shell(x: np.ndarray, symbols: np.ndarray) -> LogisticModel:
    """The standardisation and symbols of a logistic model fitted on `x` (no coefficients)."""
    # nan-aware moments by hand: a feature missing on every row (taker_buy_ratio of a
    # source without taker volumes) gets mean 0 and scale 1, i.e. a constant 0 input
    # (a column at a time: temporaries of one column, never of the matrix)
    means, scales = np.zeros(x.shape[1]), np.ones(x.shape[1])
    for j in range(x.shape[1]):
        column = x[:, j].astype(np.float64)
        column = column[~np.isnan(column)]
        if column.size:
            means[j] = column.mean()
            spread = float(np.sqrt(np.mean((column - means[j]) ** 2)))
            scales[j] = spread if spread > 0 else 1.0
    return LogisticModel(
        NUMERIC_FEATURES,
        tuple(float(v) for v in means),
        tuple(float(v) for v in scales),
        tuple(sorted({str(s) for s in np.unique(symbols)})),
        (),
        0.0,
    )


def matrix_target(matrix: TrainingMatrix, candidate: Candidate, fee_rate: float) -> np.ndarray:
    """`candidate`'s target on the matrix's rows, float32 0/1 with NaN where unknown: the
    column `known_targets` gives a frame, for the quantized fit path."""
    if not candidate.fee_aware:
        return matrix.label(candidate.target())
    r = matrix.label(label_return(candidate.horizon))
    return np.where(np.isnan(r), np.nan, r > fee_threshold(fee_rate)).astype(np.float32)


def fit_logistic_matrix(
    matrix: TrainingMatrix, rows: slice, target: np.ndarray, *, label: str, seed: int = 0
) -> LogisticModel:
    """`fit_logistic` on a range of the matrix's rows, `target` one of `matrix_target`'s."""
    symbols = np.asarray(matrix.symbols, dtype=object)[matrix.symbol[rows]]
    y = target[rows].astype(np.int8)
    return fit_logistic_arrays(matrix.numeric[rows], symbols, y, label=label, seed=seed)


# ---------------------------------------------------------------- one interface

Fitted: TypeAlias = CatBoostClassifier | LogisticModel


def fit(
    candidate: Candidate,
    fit_rows: pl.DataFrame,
    validation: pl.DataFrame | None,
    config: ModelConfig,
    *,
    label: str | None = None,
) -> Fitted:
    """Fit `candidate` on `fit_rows` (CatBoost stops early on `validation`); `label`
    overrides its target (the leakage check fits on shuffled labels)."""
    target = label or candidate.target()
    if candidate.family == "logistic":
        return fit_logistic(fit_rows, target, seed=config.seed)
    return fit_classifier(fit_rows, validation, config, label=target)


def predict(model: Fitted, frame: pl.DataFrame) -> np.ndarray:
    if isinstance(model, LogisticModel):
        return model.predict(frame)
    return predict_up(model, frame)


def iterations(model: Fitted) -> int:
    return int(model.tree_count_ or 0) if isinstance(model, CatBoostClassifier) else 0


def centre(candidate: Candidate, fit_rows: pl.DataFrame) -> float:
    """Where the threshold grid is centred: 0.5, or the training base rate of a fee-aware
    target (a probability of 0.3 may be a strong signal when the base rate is 0.2)."""
    if not candidate.fee_aware:
        return 0.5
    rate = fit_rows.get_column(candidate.target()).cast(pl.Float64).mean()
    return float(rate) if isinstance(rate, float) else 0.5
