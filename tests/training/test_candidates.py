"""Every candidate on the same folds, rows and features; the choice on validation only."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from klinehouse.errors import KlinehouseError
from training import candidates as cand
from training import synthetic
from training.evaluate import EvalConfig, evaluate
from training.models import ModelConfig

FAST = ModelConfig(iterations=30, depth=3, learning_rate=0.1)


@pytest.fixture(scope="module")
def all_candidates():
    config = EvalConfig(n_folds=2, embargo_bars=5, leakage_check=False, bootstrap_resamples=100)
    frame = synthetic.frame(bars=700, signal=1.0, seed=2)
    return frame, evaluate(frame, interval="1h", model_config=FAST, config=config)


def test_every_candidate_is_scored_on_the_same_bars(all_candidates) -> None:
    _frame, ev = all_candidates
    table = ev.metrics.candidates
    assert list(table) == list(cand.DEFAULT_CANDIDATES)
    # the rows where the 24-bar label is unknown are dropped for every candidate alike
    assert ev.predictions.get_column("target_log_return_24").null_count() == 0
    bars = {len(r) for r in ev.candidate_returns.values()}
    assert bars == {ev.metrics.backtest.model.bars}
    for name, c in table.items():
        assert c.backtest.bars == ev.metrics.backtest.buy_and_hold.bars, name
        assert c.deflated_sharpe is not None and 0.0 <= c.deflated_sharpe <= 1.0
        assert len(c.thresholds) == 2
    # the fee-aware target: the 4-bar move beats a round trip at 0.1% per side
    fee = table["catboost_fee_h4"]
    expected = float(
        (ev.predictions.get_column("target_log_return_4") > -2 * math.log(1 - 0.001)).mean()
    )
    assert fee.target_rate == pytest.approx(expected)
    assert fee.target_rate is not None and table["catboost_h4"].target_rate is not None
    assert fee.target_rate < table["catboost_h4"].target_rate
    # the planted next-bar signal: the next-bar candidates forecast best
    h1, h24 = table["catboost_h1"].forecast.auc, table["catboost_h24"].forecast.auc
    assert h1 is not None and h24 is not None and h1 > h24
    linear = table["logistic_h1"].forecast.auc
    assert linear is not None and linear > 0.7


def test_the_choice_is_the_best_validation_sharpe(all_candidates) -> None:
    _, ev = all_candidates
    table = ev.metrics.candidates
    best = max(table, key=lambda n: table[n].validation_sharpe or -math.inf)
    assert ev.chosen == ev.metrics.chosen == best
    # the chosen candidate's columns are what the top-level scores read
    chosen = ev.predictions.get_column(f"p_{best}")
    assert ev.predictions.get_column("p_up").equals(chosen.alias("p_up"))
    assert ev.metrics.backtest.model.net_return == pytest.approx(table[best].backtest.net_return)
    guards = ev.metrics.guards
    assert guards is not None and guards.pbo is not None
    assert guards.deflated_sharpe.trials == 5 * 30
    assert guards.pbo.columns == 5
    assert guards.pbo.probability is not None and 0.0 <= guards.pbo.probability <= 1.0
    for fold in ev.metrics.folds:
        assert set(fold.candidates) == set(table)


def test_purge_shorter_than_a_horizon_and_unknown_candidates_are_refused() -> None:
    frame = synthetic.frame(bars=300)
    with pytest.raises(KlinehouseError, match="longest candidate's label horizon"):
        evaluate(frame, interval="1h", model_config=FAST, config=EvalConfig(purge_bars=4))
    with pytest.raises(KlinehouseError, match="unknown candidate"):
        evaluate(
            frame, interval="1h", model_config=FAST, config=EvalConfig(candidates=("xgboost",))
        )


def test_logistic_challenger_standardises_and_handles_missing_values() -> None:
    frame = synthetic.frame(bars=400, signal=1.0, seed=4)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 0)
        .then(None)
        .otherwise(pl.col("rsi_14") * 100 + 50)
        .alias("rsi_14")
    )
    model = cand.fit_logistic(frame, "target_up")
    i = model.features.index("rsi_14")
    assert model.means[i] == pytest.approx(frame["rsi_14"].mean(), rel=1e-9)
    assert model.scales[i] == pytest.approx(frame["rsi_14"].std(ddof=0), rel=1e-9)
    p = model.predict(frame)
    assert p.shape == (frame.height,) and np.isfinite(p).all()
    # the planted feature (log_return_4) carries the largest coefficient
    numeric = np.abs(model.coefficients[: len(model.features)])
    assert model.features[int(np.argmax(numeric))] == "log_return_4"
