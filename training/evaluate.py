"""Purged walk-forward evaluation of the models against the baselines.

Per fold, the training rows are split again into fit and validation (last part,
purged): early stopping and the advice thresholds use the validation only, so
the test window influences nothing but its own scores. The leakage check refits
the classifier on the same rows with labels shuffled across the training set;
its test AUC must stay near 0.5.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from klinehouse.errors import KlinehouseError
from klinehouse.features import LABEL_CLASS, LABEL_HORIZON_BARS, LABEL_RETURN
from training import backtest, metrics
from training.backtest import Advice
from training.folds import Fold, holdout, split, walk_forward
from training.models import (
    Baselines,
    ModelConfig,
    fit_classifier,
    fit_regressor,
    predict_return,
    predict_up,
)
from training.records import Metrics

LEAKAGE_TOLERANCE = 0.03


@dataclass(frozen=True)
class EvalConfig:
    n_folds: int = 4
    min_train_fraction: float = 0.5
    purge_bars: int = LABEL_HORIZON_BARS
    embargo_bars: int = 24
    validation_fraction: float = 0.2
    fee_rate: float = backtest.DEFAULT_FEE_RATE
    allow_short: bool = False
    leakage_check: bool = True
    # candidate advice thresholds, chosen on each fold's validation rows by net return
    buy_grid: tuple[float, ...] = (0.5, 0.51, 0.52, 0.53, 0.54, 0.55, 0.57, 0.6, 0.65, 0.7)
    band_grid: tuple[float, ...] = (0.0, 0.02, 0.04)

    @property
    def gap_bars(self) -> int:
        return self.purge_bars + self.embargo_bars

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Evaluation:
    metrics: Metrics  # scores of all test rows together, backtests, one report per fold
    predictions: pl.DataFrame  # test rows of every fold with every model's forecast
    backtest_returns: dict[str, pl.DataFrame] = field(default_factory=dict)


def choose_advice(
    validation: pl.DataFrame, p_up: np.ndarray, config: EvalConfig, interval: str
) -> Advice:
    """The thresholds with the best net return on the validation rows (ties: fewer trades)."""
    frame = validation.with_columns(pl.Series("p_up", p_up))
    best: tuple[float, float, Advice] | None = None
    for buy in config.buy_grid:
        for band in config.band_grid:
            advice = Advice(buy, round(buy - band, 6), config.allow_short)
            positions = backtest.advice_positions(frame, "p_up", advice)
            stats = backtest.summary(
                backtest.run(frame, positions, fee_rate=config.fee_rate), interval
            )
            key = (stats["net_return"], -stats["turnover"])
            if best is None or key > best[:2]:
                best = (key[0], key[1], advice)
    assert best is not None
    return best[2]


def _shuffled(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    order = rng.permutation(frame.height)
    return frame.with_columns(
        pl.Series(LABEL_CLASS, frame.get_column(LABEL_CLASS).to_numpy()[order])
    )


def _fold_scores(test: pl.DataFrame) -> dict[str, Any]:
    y = test.get_column(LABEL_CLASS).to_numpy()
    r = test.get_column(LABEL_RETURN).to_numpy()
    scores: dict[str, Any] = {
        "classifier": metrics.classification(y, test.get_column("p_up").to_numpy()),
        "majority": metrics.classification(y, test.get_column("p_majority").to_numpy()),
        "momentum": metrics.classification(y, test.get_column("p_momentum").to_numpy()),
        "regressor": metrics.regression(r, test.get_column("expected_log_return").to_numpy()),
        "zero_return": {"mae": metrics.mae(r, np.zeros_like(r))},
        "up_rate": float(np.mean(y)),
    }
    if "p_shuffled" in test.columns:
        scores["shuffled_labels"] = metrics.classification(
            y, test.get_column("p_shuffled").to_numpy()
        )
    return scores


def evaluate_fold(
    train: pl.DataFrame,
    test: pl.DataFrame,
    *,
    model_config: ModelConfig,
    config: EvalConfig,
    interval: str,
) -> tuple[pl.DataFrame, Advice, dict[str, Any]]:
    fit_rows, val_rows = holdout(
        train, fraction=config.validation_fraction, gap_bars=config.gap_bars
    )
    classifier = fit_classifier(fit_rows, val_rows, model_config)
    regressor = fit_regressor(fit_rows, val_rows, model_config)
    advice = choose_advice(val_rows, predict_up(classifier, val_rows), config, interval)
    base = Baselines.fit(train)
    out = test.with_columns(
        pl.Series("p_up", predict_up(classifier, test)),
        pl.Series("expected_log_return", predict_return(regressor, test)),
        pl.Series("p_majority", base.majority(test)),
        pl.Series("p_momentum", base.momentum(test)),
    )
    out = out.with_columns(backtest.advice_positions(out, "p_up", advice).alias("position_model"))
    if config.leakage_check:
        shuffled = _shuffled(train, model_config.seed)
        s_fit, s_val = holdout(
            shuffled, fraction=config.validation_fraction, gap_bars=config.gap_bars
        )
        placebo = fit_classifier(s_fit, s_val, model_config)
        out = out.with_columns(pl.Series("p_shuffled", predict_up(placebo, test)))
    info = {
        "classifier_iterations": int(classifier.tree_count_ or 0),
        "regressor_iterations": int(regressor.tree_count_ or 0),
        "buy_threshold": advice.buy_threshold,
        "sell_threshold": advice.sell_threshold,
    }
    return out, advice, info


def _backtests(
    predictions: pl.DataFrame, config: EvalConfig, interval: str
) -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
    strategies = {
        "model": predictions.get_column("position_model"),
        "buy_and_hold": pl.Series("position", np.ones(predictions.height)),
        "momentum": backtest.momentum_positions(predictions, allow_short=config.allow_short),
    }
    returns = {
        name: backtest.run(predictions, positions, fee_rate=config.fee_rate)
        for name, positions in strategies.items()
    }
    return {name: backtest.summary(r, interval) for name, r in returns.items()}, returns


def evaluate(
    frame: pl.DataFrame,
    *,
    interval: str,
    model_config: ModelConfig,
    config: EvalConfig,
) -> Evaluation:
    """Walk-forward scores of the classifier, the regressor and the baselines on `frame`
    (labelled rows, sorted by open_time)."""
    if frame.is_empty():
        raise KlinehouseError("no labelled rows to train on: is the slice empty?")
    folds = walk_forward(
        frame.get_column("open_time"),
        n_folds=config.n_folds,
        min_train_fraction=config.min_train_fraction,
        purge_bars=config.purge_bars,
        embargo_bars=config.embargo_bars,
    )
    parts = []
    fold_reports = []
    for fold in folds:
        train, test = split(frame, fold)
        out, _advice, info = evaluate_fold(
            train, test, model_config=model_config, config=config, interval=interval
        )
        out = out.with_columns(pl.lit(fold.number).alias("fold"))
        parts.append(out)
        fold_reports.append(_fold_report(fold, train, out, info, config, interval))
    predictions = pl.concat(parts)
    overall = _fold_scores(predictions)
    overall["backtest"], returns = _backtests(predictions, config, interval)
    if config.leakage_check:
        shuffled_auc = overall["shuffled_labels"]["auc"]
        overall["leakage_check"] = {
            "shuffled_label_auc": shuffled_auc,
            "tolerance": LEAKAGE_TOLERANCE,
            "passed": bool(abs(shuffled_auc - 0.5) <= LEAKAGE_TOLERANCE),
        }
    overall["test_rows"] = predictions.height
    return Evaluation(Metrics.of({**overall, "folds": fold_reports}), predictions, returns)


def _fold_report(
    fold: Fold,
    train: pl.DataFrame,
    test: pl.DataFrame,
    info: dict[str, Any],
    config: EvalConfig,
    interval: str,
) -> dict[str, Any]:
    report: dict[str, Any] = fold.as_dict()
    report.update(info)
    report["train_rows"] = train.height
    report["test_rows"] = test.height
    # the rows actually used, so a reader (and the tests) can check the purge
    report["train_last_open_time"] = train.get_column("open_time").max().isoformat()  # type: ignore[union-attr]
    report["test_first_open_time"] = test.get_column("open_time").min().isoformat()  # type: ignore[union-attr]
    report["scores"] = _fold_scores(test)
    report["backtest"], _ = _backtests(test, config, interval)
    return report
