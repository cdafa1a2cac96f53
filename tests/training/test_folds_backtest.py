"""Walk-forward folds, the advice backtest and the promotion rule on small synthetic frames."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from klinehouse.errors import KlinehouseError
from training import backtest, synthetic
from training.backtest import Advice
from training.evaluate import EvalConfig, evaluate
from training.folds import holdout, split, walk_forward
from training.models import ModelConfig
from training.records import (
    Backtests,
    BootstrapBound,
    Classification,
    DeflatedSharpe,
    Guards,
    LeakageCheck,
    Metrics,
    Strategy,
)
from training.registry import decide


def test_walk_forward_is_ordered_purged_and_covers_the_tail() -> None:
    df = synthetic.frame(bars=1000)
    folds = walk_forward(df["open_time"], n_folds=4, purge_bars=2, embargo_bars=10)
    assert len(folds) == 4
    times = df["open_time"].unique().sort().to_list()
    assert folds[0].test_start == times[500]
    assert folds[-1].test_end == times[-1]
    for a, b in itertools.pairwise(folds):
        assert b.test_start > a.test_end  # test windows do not overlap
    for fold in folds:
        train, test = split(df, fold)
        assert train["open_time"].max() < test["open_time"].min()
        assert test["open_time"].min() - train["open_time"].max() == timedelta(hours=13)
    with pytest.raises(KlinehouseError, match="shorter than the label horizon"):
        walk_forward(df["open_time"], n_folds=2, purge_bars=0)
    with pytest.raises(KlinehouseError, match="too few"):
        walk_forward(df["open_time"].head(30), n_folds=10, embargo_bars=24)


def test_holdout_leaves_a_gap() -> None:
    df = synthetic.frame(bars=200)
    fit, val = holdout(df, fraction=0.25, gap_bars=5)
    assert val["open_time"].min() - fit["open_time"].max() == timedelta(hours=6)
    assert val["open_time"].n_unique() == 50


def _bars(returns: list[float], symbol: str = "BTCUSDT") -> pl.DataFrame:
    start = datetime(2023, 1, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "symbol": symbol,
            "open_time": [start + timedelta(hours=i) for i in range(len(returns))],
            "log_return_1": [0.0, *[math.log(1 + r) for r in returns[:-1]]],
            "target_log_return_1": [math.log(1 + r) for r in returns],
        }
    )


def test_backtest_pays_fees_on_entry_and_exit() -> None:
    bars = _bars([0.01, 0.02, -0.01])
    held = backtest.run(bars, pl.Series([1.0, 1.0, 1.0]), fee_rate=0.001)
    stats = backtest.summary(held, "1h")
    assert stats["gross_return"] == pytest.approx(1.01 * 1.02 * 0.99 - 1)
    assert stats["fees_paid"] == pytest.approx(0.002)  # buy once, sell once
    net = (1.01 - 0.001) * 1.02 * (0.99 - 0.001) - 1
    assert stats["net_return"] == pytest.approx(net)
    flat = backtest.summary(backtest.run(bars, pl.Series([0.0, 0.0, 0.0])), "1h")
    assert flat["net_return"] == 0.0 and flat["turnover"] == 0.0


def test_advice_hysteresis_and_short() -> None:
    bars = _bars([0.0] * 5).with_columns(pl.Series("p", [0.6, 0.52, 0.4, 0.52, 0.7]))
    long_flat = backtest.advice_positions(bars, "p", Advice(0.55, 0.45))
    assert long_flat.to_list() == [1.0, 1.0, 0.0, 0.0, 1.0]
    long_short = backtest.advice_positions(bars, "p", Advice(0.55, 0.45, allow_short=True))
    assert long_short.to_list() == [1.0, 1.0, -1.0, -1.0, 1.0]


def test_evaluation_finds_a_planted_signal_and_not_a_shuffled_one() -> None:
    fast = ModelConfig(iterations=60, depth=3, learning_rate=0.1)
    ev = evaluate(
        synthetic.frame(bars=900, signal=1.0),
        interval="1h",
        model_config=fast,
        config=EvalConfig(n_folds=2, embargo_bars=5, purge_bars=1, candidates=NEXT_BAR),
    )
    assert ev.metrics.classifier.auc is not None and ev.metrics.classifier.auc > 0.75
    assert ev.metrics.leakage_check is not None and ev.metrics.leakage_check.passed
    noise = evaluate(
        synthetic.frame(bars=900, signal=0.0, seed=3),
        interval="1h",
        model_config=fast,
        config=EvalConfig(
            n_folds=2, embargo_bars=5, purge_bars=1, leakage_check=False, candidates=NEXT_BAR
        ),
    )
    assert noise.metrics.classifier.auc is not None
    assert abs(noise.metrics.classifier.auc - 0.5) < 0.05


# next-bar candidates only: a 1-bar purge, as these small synthetic frames were sized for
NEXT_BAR = ("catboost_h1", "logistic_h1")


def _metrics(loss: float, net: float) -> Metrics:
    return Metrics(
        classifier=Classification(log_loss=loss),
        majority=Classification(log_loss=0.6931),
        momentum=Classification(log_loss=0.6925),
        backtest=Backtests(
            model=Strategy(net_return=net, sharpe=1.5),
            buy_and_hold=Strategy(net_return=-0.05, sharpe=-0.2),
            momentum=Strategy(net_return=-0.5, sharpe=-1.0),
        ),
        leakage_check=LeakageCheck(passed=True, shuffled_label_auc=0.5, tolerance=0.03),
        guards=Guards(
            bootstrap=BootstrapBound(lower=0.01, confidence=0.95),
            deflated_sharpe=DeflatedSharpe(probability=0.97, trials=150),
        ),
    )


def test_promotion_rule() -> None:
    good = _metrics(0.690, 0.10)
    assert decide(good, None).promote
    assert decide(good, _metrics(0.691, 0.05)).promote
    worse_loss = decide(_metrics(0.6915, 0.20), _metrics(0.690, 0.05))
    assert not worse_loss.promote and "champion's" in worse_loss.reason
    worse_net = decide(_metrics(0.689, -0.10), None)
    assert not worse_net.promote and "buy_and_hold" in worse_net.reason
    assert not decide(good, good).promote  # a tie does not replace the champion
    leaky = good.model_copy(
        update={"leakage_check": LeakageCheck(passed=False, shuffled_label_auc=0.6, tolerance=0.03)}
    )
    assert "leakage" in decide(leaky, None).reason
    assert np.isfinite(good.classifier.log_loss)


def test_metrics_round_trip_the_stored_json() -> None:
    """A stored document loads (NaN stored as null), keeps unknown fields, and writes back
    the same JSON: rows registered before these classes existed still load."""
    stored = {
        "classifier": {"log_loss": 0.69, "auc": None, "brier": 0.25, "accuracy": 0.5},
        "majority": {"log_loss": 0.6931},
        "momentum": {"log_loss": 0.7},
        "backtest": {
            "model": {"net_return": 0.1, "hit_rate": None, "bars": 10},
            "buy_and_hold": {"net_return": 0.0},
            "momentum": {"net_return": 0.0},
        },
        "up_rate": 0.5,
        "folds": [
            {
                "number": 0,
                "train_start": "2024-01-01T00:00:00+00:00",
                "train_end": "2024-01-10T00:00:00+00:00",
                "test_start": "2024-01-11T01:00:00+00:00",
                "test_end": "2024-01-12T00:00:00+00:00",
                "buy_threshold": 0.55,
                "sell_threshold": 0.51,
                "scores": {
                    "classifier": {"log_loss": 0.7},
                    "majority": {"log_loss": 0.69},
                    "momentum": {"log_loss": 0.71},
                    "up_rate": 0.5,
                },
                "backtest": {
                    "model": {"net_return": 0.01},
                    "buy_and_hold": {"net_return": 0.0},
                    "momentum": {"net_return": -0.01},
                },
            }
        ],
        "added_later": {"anything": 1},
    }
    metrics = Metrics.of(stored)
    assert metrics.classifier.auc is None and metrics.backtest.model.bars == 10
    assert metrics.folds[0].scores.majority.log_loss == 0.69
    assert metrics.leakage_check is None
    # a row stored before the candidates: no choice, no guards (the rule then names that)
    assert metrics.chosen is None and metrics.guards is None and metrics.servable is None
    assert metrics.candidates == {} and metrics.folds[0].candidates == {}
    assert "no selection-bias guards recorded" in decide(metrics, None).reason
    assert metrics.to_json() == stored
    assert Metrics.of({**stored, "up_rate": float("nan")}).up_rate is None
    with pytest.raises(ValueError, match="log_loss"):
        Metrics.of({**stored, "classifier": {"auc": 0.5}})
