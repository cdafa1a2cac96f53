"""The risk side of the promotion rule, on one run's typed metrics (`records.Metrics`).

`registry.decide` adds these conditions to its own (log loss and net return against the
baselines and the champion, the leakage check). Each failed condition is named, with
its numbers, so that the registry's reason says exactly why a model was not promoted:

- the Sharpe ratio of the advice beats buy-and-hold's over the same test bars;
- a block-bootstrap lower bound on the net-return difference over buy-and-hold is > 0;
- the deflated Sharpe probability (N = candidates x threshold settings) is >= 0.95;
- the chosen candidate can be served (the prediction service loads CatBoost models).
"""

from __future__ import annotations

from training.records import Metrics

MIN_DEFLATED_SHARPE = 0.95


def risk_problems(metrics: Metrics) -> list[str]:
    """The failed risk conditions of `metrics` (empty when all hold)."""
    problems: list[str] = []
    model = metrics.backtest.model.sharpe
    hold = metrics.backtest.buy_and_hold.sharpe
    if model is None or hold is None or not model > hold:
        problems.append(
            f"Sharpe {_fmt(model, '.2f')} does not beat buy_and_hold's ({_fmt(hold, '.2f')})"
        )
    guards = metrics.guards
    if guards is None:
        problems.append("no selection-bias guards recorded (deflated Sharpe, bootstrap)")
        return problems
    boot = guards.bootstrap
    if boot.lower is None or not boot.lower > 0:
        problems.append(
            f"block-bootstrap {_fmt(boot.confidence, '.0%')} lower bound on the"
            f" net-return difference over buy_and_hold (log growth {_fmt(boot.lower, '+.4f')})"
            " is not above 0"
        )
    dsr = guards.deflated_sharpe
    if dsr.probability is None or not dsr.probability >= MIN_DEFLATED_SHARPE:
        problems.append(
            f"deflated Sharpe probability {_fmt(dsr.probability, '.3f')} is below"
            f" {MIN_DEFLATED_SHARPE} (N = {dsr.trials} trials)"
        )
    if metrics.servable is False:
        problems.append(
            f"candidate {metrics.chosen} cannot be served yet"
            " (the prediction service loads CatBoost models only)"
        )
    return problems


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)
