"""Purged walk-forward evaluation of the candidates against the baselines.

Per fold, the training rows are split again into fit and validation (last part,
purged): early stopping, every candidate's advice thresholds and the choice among
the candidates use the validation only, so the test windows influence nothing but
their own scores. The chosen candidate is the one with the best mean validation
Sharpe ratio over the folds; its test-window results are what the promotion rule
reads, next to the selection-bias guards (`training.selection`): the deflated Sharpe
ratio over every candidate x threshold setting tried, the PBO over the candidates'
per-bar returns, and a block-bootstrap bound on its net return over buy-and-hold.
The leakage check refits the chosen candidate on the same rows with its labels
shuffled across the training set; its test AUC must stay near 0.5.

A fold's CatBoost models (its regressor, every CatBoost candidate) are fitted through
`training.pools.fit_frame` (float32 matrix, quantized pools: the same models as on the
frame, less memory); the logistic challenger and the leakage check's refit on the frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from klinehouse.errors import KlinehouseError
from klinehouse.features import LABEL_HORIZONS, LABEL_RETURN
from training import backtest, metrics, pools, selection
from training import candidates as cand
from training.backtest import Advice
from training.candidates import DEFAULT_CANDIDATES, REFERENCE, Candidate
from training.folds import Fold, holdout, split, walk_forward
from training.models import Baselines, ModelConfig, predict_return
from training.records import Metrics

LEAKAGE_TOLERANCE = 0.03


@dataclass(frozen=True)
class EvalConfig:
    n_folds: int = 4
    min_train_fraction: float = 0.5
    # at least the longest candidate's label horizon (24 bars)
    purge_bars: int = max(LABEL_HORIZONS)
    embargo_bars: int = 24
    validation_fraction: float = 0.2
    fee_rate: float = backtest.DEFAULT_FEE_RATE
    allow_short: bool = False
    leakage_check: bool = True
    # candidate advice thresholds, chosen on each fold's validation rows by net return
    buy_grid: tuple[float, ...] = (0.5, 0.51, 0.52, 0.53, 0.54, 0.55, 0.57, 0.6, 0.65, 0.7)
    band_grid: tuple[float, ...] = (0.0, 0.02, 0.04)
    candidates: tuple[str, ...] = DEFAULT_CANDIDATES
    bootstrap_resamples: int = 1000

    @property
    def gap_bars(self) -> int:
        return self.purge_bars + self.embargo_bars

    @property
    def threshold_settings(self) -> int:
        return len(self.buy_grid) * len(self.band_grid)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Evaluation:
    metrics: Metrics  # the chosen candidate's scores, backtests, folds, candidates, guards
    predictions: pl.DataFrame  # test rows of every fold with every candidate's forecast
    backtest_returns: dict[str, pl.DataFrame] = field(default_factory=dict)
    chosen: str = REFERENCE
    candidate_returns: dict[str, pl.DataFrame] = field(default_factory=dict)


def _grid(config: EvalConfig, shift: float = 0.0) -> list[Advice]:
    return [
        Advice(round(buy + shift, 6), round(buy - band + shift, 6), config.allow_short)
        for buy in config.buy_grid
        for band in config.band_grid
    ]


def choose_thresholds(
    validation: pl.DataFrame,
    p_up: np.ndarray,
    config: EvalConfig,
    interval: str,
    *,
    centre: float = 0.5,
) -> tuple[Advice, dict[str, float]]:
    """The thresholds (grid centred on `centre`) with the best net return on the
    validation rows (ties: fewer trades), and that backtest's summary."""
    frame = validation.with_columns(pl.Series("p_up", p_up))
    best: tuple[tuple[float, float], Advice, dict[str, float]] | None = None
    for advice in _grid(config, centre - 0.5):
        positions = backtest.advice_positions(frame, "p_up", advice)
        stats = backtest.summary(backtest.run(frame, positions, fee_rate=config.fee_rate), interval)
        key = (stats["net_return"], -stats["turnover"])
        if best is None or key > best[0]:
            best = (key, advice, stats)
    assert best is not None
    return best[1], best[2]


def choose_advice(
    validation: pl.DataFrame, p_up: np.ndarray, config: EvalConfig, interval: str
) -> Advice:
    """The thresholds with the best net return on the validation rows (ties: fewer trades)."""
    return choose_thresholds(validation, p_up, config, interval)[0]


def _shuffled(frame: pl.DataFrame, label: str, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    order = rng.permutation(frame.height)
    return frame.with_columns(pl.Series(label, frame.get_column(label).to_numpy()[order]))


def _per_bar_sharpe(returns: pl.DataFrame) -> float:
    return selection.sharpe(returns.get_column("net").to_numpy())


def evaluate_fold(
    train: pl.DataFrame,
    test: pl.DataFrame,
    *,
    candidates: list[Candidate],
    model_config: ModelConfig,
    config: EvalConfig,
    interval: str,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Every candidate fitted on the fold's fit rows, its thresholds chosen on the
    validation rows; the test rows with each one's probability, shifted probability
    (`q_`, the grid's scale), position and its target's baselines."""
    # every CatBoost model of the fold through quantized pools (the same models as on
    # frames, `training.pools`); the linear challenger on the frame's rows
    fits = pools.fit_frame(
        train,
        [c.target() for c in candidates if c.family == "catboost"],
        model_config,
        fraction=config.validation_fraction,
        gap_bars=config.gap_bars,
    )
    fit_rows = train.slice(0, fits.fit.stop)
    val_rows = train.slice(fits.validation.start, fits.validation.stop - fits.validation.start)
    regressor = fits.regressor
    out = test.with_columns(pl.Series("expected_log_return", predict_return(regressor, test)))
    info: dict[str, Any] = {
        "regressor_iterations": int(regressor.tree_count_ or 0),
        "candidates": {},
    }
    for c in candidates:
        model = (
            fits.classifiers[c.target()]
            if c.family == "catboost"
            else cand.fit(c, fit_rows, val_rows, model_config)
        )
        shift = cand.centre(c, fit_rows) - 0.5
        advice, val_stats = choose_thresholds(
            val_rows, cand.predict(model, val_rows), config, interval, centre=shift + 0.5
        )
        p = cand.predict(model, test)
        base = Baselines.fit(train, c.target())
        out = out.with_columns(
            pl.Series(f"p_{c.name}", p),
            pl.Series(f"q_{c.name}", p - shift),
            pl.Series(f"p_majority_{c.name}", base.majority(test)),
            pl.Series(f"p_momentum_{c.name}", base.momentum(test)),
        )
        out = out.with_columns(
            backtest.advice_positions(out, f"p_{c.name}", advice).alias(f"position_{c.name}")
        )
        info["candidates"][c.name] = {
            "iterations": cand.iterations(model),
            "buy_threshold": advice.buy_threshold,
            "sell_threshold": advice.sell_threshold,
            "validation_net_return": val_stats["net_return"],
            # annualised, as `backtest.summary` gives it: the choice compares like with like
            "validation_sharpe": val_stats["sharpe"],
        }
    return out, info


def _choose(fold_infos: list[dict[str, Any]], candidates: list[Candidate]) -> str:
    """The candidate with the best mean validation Sharpe ratio (ties: listed first)."""
    scores = {
        c.name: float(np.mean([f["candidates"][c.name]["validation_sharpe"] for f in fold_infos]))
        for c in candidates
    }
    return max(scores, key=lambda name: (scores[name], -list(scores).index(name)))


def _with_chosen(frame: pl.DataFrame, chosen: Candidate) -> pl.DataFrame:
    """The chosen candidate's columns under the names the scores and the report read."""
    return frame.with_columns(
        pl.col(f"p_{chosen.name}").alias("p_up"),
        pl.col(f"position_{chosen.name}").alias("position_model"),
        pl.col(f"p_majority_{chosen.name}").alias("p_majority"),
        pl.col(f"p_momentum_{chosen.name}").alias("p_momentum"),
        pl.col(chosen.target()).alias("y_chosen"),
    )


def _fold_scores(test: pl.DataFrame) -> dict[str, Any]:
    y = test.get_column("y_chosen").to_numpy()
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


def _leakage(
    frame: pl.DataFrame,
    folds: list[Fold],
    chosen: Candidate,
    model_config: ModelConfig,
    config: EvalConfig,
) -> pl.Series:
    """P(target) of the chosen candidate refitted per fold on shuffled training labels."""
    parts = []
    for fold in folds:
        train, test = split(frame, fold)
        shuffled = _shuffled(train, chosen.target(), model_config.seed)
        s_fit, s_val = holdout(
            shuffled, fraction=config.validation_fraction, gap_bars=config.gap_bars
        )
        placebo = cand.fit(chosen, s_fit, s_val, model_config)
        parts.append(cand.predict(placebo, test))
    return pl.Series("p_shuffled", np.concatenate(parts))


def _candidate_table(
    predictions: pl.DataFrame,
    candidates: list[Candidate],
    fold_infos: list[dict[str, Any]],
    config: EvalConfig,
    interval: str,
) -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
    table: dict[str, Any] = {}
    returns: dict[str, pl.DataFrame] = {}
    r = predictions.get_column(LABEL_RETURN).to_numpy()
    for c in candidates:
        y = predictions.get_column(c.target()).to_numpy()
        p = predictions.get_column(f"p_{c.name}").to_numpy()
        returns[c.name] = backtest.run(
            predictions, predictions.get_column(f"position_{c.name}"), fee_rate=config.fee_rate
        )
        never = [
            k + 1
            for k, info in enumerate(fold_infos)
            if not predictions.filter(
                (pl.col("fold") == k + 1) & (pl.col(f"position_{c.name}") != 0)
            ).height
        ]
        per_fold = [info["candidates"][c.name] for info in fold_infos]
        table[c.name] = {
            "description": c.describe(),
            "family": c.family,
            "horizon": c.horizon,
            "target": c.target(),
            "target_rate": float(np.mean(y)),
            "forecast": metrics.classification(y, p),
            "majority_log_loss": metrics.log_loss(
                y, predictions.get_column(f"p_majority_{c.name}").to_numpy()
            ),
            "momentum_log_loss": metrics.log_loss(
                y, predictions.get_column(f"p_momentum_{c.name}").to_numpy()
            ),
            "ic": metrics.information_coefficient(r, p),
            "backtest": backtest.summary(returns[c.name], interval),
            "validation_sharpe": float(np.mean([f["validation_sharpe"] for f in per_fold])),
            "validation_net_return": float(np.mean([f["validation_net_return"] for f in per_fold])),
            "thresholds": [[f["buy_threshold"], f["sell_threshold"]] for f in per_fold],
            "never_trades_in_folds": never,
        }
    return table, returns


def _trial_sharpes(
    predictions: pl.DataFrame, candidates: list[Candidate], config: EvalConfig
) -> list[float]:
    """Per-bar test Sharpe ratios of the candidate x threshold settings that trade: their
    variance sets the expected maximum (N counts every setting tried, see `_guards`)."""
    out = []
    for c in candidates:
        for advice in _grid(config):
            positions = backtest.advice_positions(predictions, f"q_{c.name}", advice)
            if (positions != 0).any():  # a setting that never trades has no Sharpe ratio
                out.append(
                    _per_bar_sharpe(backtest.run(predictions, positions, fee_rate=config.fee_rate))
                )
    return out


def _pbo_splits(bars: int) -> int:
    splits = 16
    while splits > 2 and bars < 4 * splits:
        splits -= 2
    return splits


def _guards(
    returns: dict[str, pl.DataFrame],
    chosen_returns: pl.DataFrame,
    buy_and_hold: pl.DataFrame,
    trials: list[float],
    n_trials: int,
    config: EvalConfig,
) -> dict[str, Any]:
    net = chosen_returns.get_column("net").to_numpy()
    guards: dict[str, Any] = {
        "deflated_sharpe": selection.deflated_sharpe(net, trials, n_trials=n_trials).as_dict(),
        "bootstrap": selection.bootstrap_difference(
            net,
            buy_and_hold.get_column("net").to_numpy(),
            resamples=config.bootstrap_resamples,
        ).as_dict(),
    }
    if len(returns) >= 2:
        matrix = np.column_stack([r.get_column("net").to_numpy() for r in returns.values()])
        pbo = selection.backtest_overfitting(matrix, splits=_pbo_splits(matrix.shape[0]))
        guards["pbo"] = pbo.as_dict()
    else:
        guards["pbo"] = None
    return guards


def evaluate(
    frame: pl.DataFrame,
    *,
    interval: str,
    model_config: ModelConfig,
    config: EvalConfig,
) -> Evaluation:
    """Walk-forward scores of every candidate and the baselines on `frame` (labelled
    rows, sorted by open_time), the choice among them and its guards."""
    if frame.is_empty():
        raise KlinehouseError("no labelled rows to train on: is the slice empty?")
    candidates = cand.resolve(config.candidates)
    longest = cand.horizon(candidates)
    if config.purge_bars < longest:
        raise KlinehouseError(
            f"purge of {config.purge_bars} bars is shorter than the longest candidate's"
            f" label horizon ({longest} bars)"
        )
    frame = cand.known_targets(frame, candidates, config.fee_rate)
    if frame.is_empty():
        raise KlinehouseError("no rows with every candidate's label known: is the slice empty?")
    folds = walk_forward(
        frame.get_column("open_time"),
        n_folds=config.n_folds,
        min_train_fraction=config.min_train_fraction,
        purge_bars=config.purge_bars,
        embargo_bars=config.embargo_bars,
    )
    parts, fold_infos, trains = [], [], []
    for fold in folds:
        train, test = split(frame, fold)
        out, info = evaluate_fold(
            train,
            test,
            candidates=candidates,
            model_config=model_config,
            config=config,
            interval=interval,
        )
        parts.append(out.with_columns(pl.lit(fold.number).alias("fold")))
        fold_infos.append(info)
        trains.append((train.height, train.get_column("open_time").max()))
    chosen = cand.CANDIDATES[_choose(fold_infos, candidates)]
    predictions = _with_chosen(pl.concat(parts), chosen)
    if config.leakage_check:
        predictions = predictions.with_columns(_leakage(frame, folds, chosen, model_config, config))
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
    table, candidate_returns = _candidate_table(
        predictions, candidates, fold_infos, config, interval
    )
    trials = _trial_sharpes(predictions, candidates, config)
    n_trials = len(candidates) * config.threshold_settings
    for name, r in candidate_returns.items():
        dsr = selection.deflated_sharpe(r.get_column("net").to_numpy(), trials, n_trials=n_trials)
        table[name]["deflated_sharpe"] = dsr.probability
    overall["chosen"] = chosen.name
    overall["candidates"] = table
    overall["guards"] = _guards(
        candidate_returns, returns["model"], returns["buy_and_hold"], trials, n_trials, config
    )
    overall["guards"]["trials"] = {
        "candidates": len(candidates),
        "threshold_settings": config.threshold_settings,
        "trading": len(trials),
    }
    fold_reports = [
        _fold_report(
            fold,
            rows,
            predictions.filter(pl.col("fold") == fold.number),
            info,
            chosen,
            config,
            interval,
        )
        for fold, rows, info in zip(folds, trains, fold_infos, strict=True)
    ]
    return Evaluation(
        Metrics.of({**overall, "folds": fold_reports}),
        predictions,
        returns,
        chosen.name,
        candidate_returns,
    )


def _fold_report(
    fold: Fold,
    train_rows: tuple[int, Any],
    test: pl.DataFrame,
    info: dict[str, Any],
    chosen: Candidate,
    config: EvalConfig,
    interval: str,
) -> dict[str, Any]:
    report: dict[str, Any] = fold.as_dict()
    mine = info["candidates"][chosen.name]
    report.update(
        regressor_iterations=info["regressor_iterations"],
        classifier_iterations=mine["iterations"],
        buy_threshold=mine["buy_threshold"],
        sell_threshold=mine["sell_threshold"],
        candidates=info["candidates"],
    )
    report["train_rows"] = train_rows[0]
    # the rows actually used, so a reader (and the tests) can check the purge
    report["train_last_open_time"] = train_rows[1].isoformat()
    report["test_rows"] = test.height
    report["test_first_open_time"] = test.get_column("open_time").min().isoformat()  # type: ignore[union-attr]
    report["never_trades"] = bool((test.get_column("position_model") == 0).all())
    report["scores"] = _fold_scores(test)
    report["backtest"], _ = _backtests(test, config, interval)
    return report
