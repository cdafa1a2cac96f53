"""The risk conditions of the promotion rule: each failed one is named in the reason."""

from __future__ import annotations

import copy
from typing import Any

from training.records import Metrics
from training.registry import Decision, decide


def _decide(doc: dict[str, Any]) -> Decision:
    """The rule on a stored document, as the registry reads it (typed, NaN as None)."""
    return decide(Metrics.of(doc), None)


def _passing() -> dict[str, Any]:
    return {
        "classifier": {"log_loss": 0.690},
        "majority": {"log_loss": 0.6931},
        "momentum": {"log_loss": 0.6925},
        "backtest": {
            "model": {"net_return": 0.10, "sharpe": 1.2},
            "buy_and_hold": {"net_return": 0.05, "sharpe": 0.9},
            "momentum": {"net_return": -0.5, "sharpe": -1.0},
        },
        "leakage_check": {"passed": True, "shuffled_label_auc": 0.5, "tolerance": 0.03},
        "chosen": "catboost_h1",
        "servable": True,
        "guards": {
            "bootstrap": {"lower": 0.002, "confidence": 0.95},
            "deflated_sharpe": {"probability": 0.96, "trials": 150},
        },
    }


def test_every_risk_condition_is_named() -> None:
    assert _decide(_passing()).promote
    cases = {
        "Sharpe 0.80 does not beat buy_and_hold's (0.90)": ("backtest", "model", "sharpe", 0.8),
        "lower bound": ("guards", "bootstrap", "lower", -0.001),
        "deflated Sharpe probability 0.940 is below 0.95": (
            "guards",
            "deflated_sharpe",
            "probability",
            0.94,
        ),
    }
    for expected, (a, b, c, value) in cases.items():
        doc = _passing()
        doc[a][b][c] = value
        decision = _decide(doc)
        assert not decision.promote and expected in decision.reason, decision.reason
    unservable = {**_passing(), "servable": False, "chosen": "logistic_h1"}
    assert "logistic_h1 cannot be served" in _decide(unservable).reason
    stored_nan = copy.deepcopy(_passing())
    stored_nan["guards"]["deflated_sharpe"]["probability"] = None  # NaN is stored as null
    assert "deflated Sharpe probability n/a" in _decide(stored_nan).reason


def test_nothing_passes_every_reason_recorded() -> None:
    doc = _passing()
    doc["classifier"]["log_loss"] = 0.70
    doc["backtest"]["model"] = {"net_return": -0.2, "sharpe": -0.5}
    doc["guards"] = {
        "bootstrap": {"lower": -0.3, "confidence": 0.95},
        "deflated_sharpe": {"probability": 0.01, "trials": 150},
    }
    doc["leakage_check"]["passed"] = False
    decision = _decide(doc)
    assert not decision.promote
    for part in (
        "leakage check failed",
        "does not beat the majority baseline",
        "does not beat the momentum baseline",
        "net return -0.2000 does not beat buy_and_hold",
        "Sharpe -0.50 does not beat buy_and_hold's",
        "lower bound",
        "deflated Sharpe probability 0.010",
    ):
        assert part in decision.reason, part
    old = {k: v for k, v in _passing().items() if k != "guards"}  # a run before the guards
    assert "no selection-bias guards recorded" in _decide(old).reason
