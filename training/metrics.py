"""Out-of-sample scores in plain numpy (no scikit-learn dependency).

AUC is the Mann-Whitney statistic with average ranks for ties, so a constant
prediction scores exactly 0.5; the information coefficient is Spearman's rank
correlation between predicted and realised returns.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_EPS = 1e-15

FloatArray = npt.NDArray[np.float64]


def _ranks(values: FloatArray) -> FloatArray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    # boundaries of runs of equal values
    change = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(values)]))
    average = (starts + ends + 1) / 2.0  # mean of 1-based ranks start+1 .. end
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def auc(y_true: npt.ArrayLike, score: npt.ArrayLike) -> float:
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(score, dtype=np.float64)
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = _ranks(s)
    return float((ranks[y].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def log_loss(y_true: npt.ArrayLike, p: npt.ArrayLike) -> float:
    y = np.asarray(y_true, dtype=np.float64)
    q = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)
    return float(-np.mean(y * np.log(q) + (1.0 - y) * np.log(1.0 - q)))


def brier(y_true: npt.ArrayLike, p: npt.ArrayLike) -> float:
    y = np.asarray(y_true, dtype=np.float64)
    return float(np.mean((np.asarray(p, dtype=np.float64) - y) ** 2))


def accuracy(y_true: npt.ArrayLike, p: npt.ArrayLike) -> float:
    y = np.asarray(y_true, dtype=bool)
    return float(np.mean((np.asarray(p, dtype=np.float64) >= 0.5) == y))


def mae(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    diff = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.mean(np.abs(diff)))


def information_coefficient(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Spearman rank correlation; NaN when either side is constant."""
    a = _ranks(np.asarray(y_true, dtype=np.float64))
    b = _ranks(np.asarray(y_pred, dtype=np.float64))
    if a.std() == 0.0 or b.std() == 0.0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def classification(y_true: npt.ArrayLike, p: npt.ArrayLike) -> dict[str, float]:
    return {
        "auc": auc(y_true, p),
        "log_loss": log_loss(y_true, p),
        "brier": brier(y_true, p),
        "accuracy": accuracy(y_true, p),
    }


def regression(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> dict[str, float]:
    return {"mae": mae(y_true, y_pred), "ic": information_coefficient(y_true, y_pred)}


def calibration_curve(
    y_true: npt.ArrayLike, p: npt.ArrayLike, *, bins: int = 10
) -> list[dict[str, float]]:
    """Mean predicted vs observed frequency in equal-count bins of the prediction."""
    y = np.asarray(y_true, dtype=np.float64)
    q = np.asarray(p, dtype=np.float64)
    order = np.argsort(q, kind="mergesort")
    out = []
    for chunk in np.array_split(order, min(bins, len(order))):
        if len(chunk):
            out.append(
                {
                    "predicted": float(q[chunk].mean()),
                    "observed": float(y[chunk].mean()),
                    "n": len(chunk),
                }
            )
    return out
