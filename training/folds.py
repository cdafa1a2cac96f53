"""Walk-forward folds in time order, with a purge and an embargo.

A label at bar t is ln(close_{t+h} / close_t): its window ends at the close of bar
t+h. Bar t may train a model tested from bar a only if that window closes before
bar a's own label window opens, i.e. t + h <= a; the purge drops the h bars before
the test and the embargo drops `embargo_bars` more, so that slowly decaying serial
dependence (volatility clusters) cannot carry information across the boundary.
Folds are defined on the grid of distinct open_times, pooled across symbols.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import polars as pl

from klinehouse.errors import KlinehouseError
from klinehouse.features import LABEL_HORIZON_BARS


@dataclass(frozen=True)
class Fold:
    number: int
    train_start: datetime
    train_end: datetime  # last training bar's open_time (inclusive)
    test_start: datetime
    test_end: datetime  # last test bar's open_time (inclusive)

    def as_dict(self) -> dict[str, object]:
        return {
            k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()
        }


def walk_forward(
    times: pl.Series,
    *,
    n_folds: int,
    min_train_fraction: float = 0.5,
    purge_bars: int = LABEL_HORIZON_BARS,
    embargo_bars: int = 24,
) -> list[Fold]:
    """Expanding-window folds: fold k tests the k-th of `n_folds` equal slices of
    the time grid after the first `min_train_fraction`, and trains on everything
    more than `purge_bars + embargo_bars` bars before that slice."""
    if n_folds < 1:
        raise KlinehouseError(f"n_folds must be at least 1, got {n_folds}")
    if purge_bars < LABEL_HORIZON_BARS:
        raise KlinehouseError(
            f"purge of {purge_bars} bars is shorter than the label horizon ({LABEL_HORIZON_BARS})"
        )
    if embargo_bars < 0 or not 0.0 < min_train_fraction < 1.0:
        raise KlinehouseError("embargo_bars must be >= 0 and min_train_fraction in (0, 1)")
    grid = times.unique().sort().to_list()
    gap = purge_bars + embargo_bars
    first_test = int(len(grid) * min_train_fraction)
    per_fold = (len(grid) - first_test) // n_folds
    if first_test - gap < 2 or per_fold < 2:
        raise KlinehouseError(
            f"{len(grid)} distinct bars are too few for {n_folds} folds with a gap of {gap} bars"
        )
    folds = []
    for k in range(n_folds):
        a = first_test + k * per_fold
        b = len(grid) if k == n_folds - 1 else a + per_fold
        folds.append(
            Fold(
                number=k + 1,
                train_start=grid[0],
                train_end=grid[a - gap - 1],
                test_start=grid[a],
                test_end=grid[b - 1],
            )
        )
    return folds


def split(frame: pl.DataFrame, fold: Fold) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(train, test) rows of `frame` for `fold`."""
    train = frame.filter(pl.col("open_time").is_between(fold.train_start, fold.train_end))
    test = frame.filter(pl.col("open_time").is_between(fold.test_start, fold.test_end))
    return train, test


def holdout(
    train: pl.DataFrame, *, fraction: float, gap_bars: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a training set into (fit, validation): the validation is its last
    `fraction` of bars, after a purge gap. Early stopping and the advice thresholds
    are chosen on the validation, so nothing is fitted on the test window."""
    grid = train.get_column("open_time").unique().sort()
    start = int(len(grid) * (1.0 - fraction))
    if start - gap_bars < 2 or start >= len(grid) - 1:
        raise KlinehouseError(f"{len(grid)} training bars are too few for a validation split")
    fit_end = grid[start - gap_bars - 1]
    val_start = grid[start]
    return (
        train.filter(pl.col("open_time") <= fit_end),
        train.filter(pl.col("open_time") >= val_start),
    )
