"""The risk side of the promotion rule, on one run's metrics document.

`registry.decide` adds these conditions to its own (log loss and net return against the
baselines and the champion, the leakage check). Each failed condition is named, with
its numbers, so that the registry's reason says exactly why a model was not promoted:

- the Sharpe ratio of the advice beats buy-and-hold's over the same test bars;
- a block-bootstrap lower bound on the net-return difference over buy-and-hold is > 0;
- the deflated Sharpe probability (N = candidates x threshold settings) is >= 0.95;
- the chosen candidate can be served (the prediction service loads CatBoost models).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MIN_DEFLATED_SHARPE = 0.95


def _document(metrics: Any) -> Mapping[str, Any]:
    dump = getattr(metrics, "model_dump", None)  # a typed record of the registry
    return dict(dump()) if callable(dump) else dict(metrics)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def risk_problems(metrics: Any) -> list[str]:
    """The failed risk conditions of `metrics` (empty when all hold)."""
    doc = _document(metrics)
    problems: list[str] = []
    backtests = doc.get("backtest") or {}
    model = _number((backtests.get("model") or {}).get("sharpe"))
    hold = _number((backtests.get("buy_and_hold") or {}).get("sharpe"))
    if model is None or hold is None or not model > hold:
        problems.append(
            f"Sharpe {_fmt(model, '.2f')} does not beat buy_and_hold's ({_fmt(hold, '.2f')})"
        )
    guards = doc.get("guards")
    if not guards:
        problems.append("no selection-bias guards recorded (deflated Sharpe, bootstrap)")
        return problems
    boot = guards.get("bootstrap") or {}
    lower = _number(boot.get("lower"))
    if lower is None or not lower > 0:
        problems.append(
            f"block-bootstrap {_fmt(_number(boot.get('confidence')), '.0%')} lower bound on the"
            f" net-return difference over buy_and_hold (log growth {_fmt(lower, '+.4f')})"
            " is not above 0"
        )
    dsr = guards.get("deflated_sharpe") or {}
    probability = _number(dsr.get("probability"))
    if probability is None or not probability >= MIN_DEFLATED_SHARPE:
        problems.append(
            f"deflated Sharpe probability {_fmt(probability, '.3f')} is below"
            f" {MIN_DEFLATED_SHARPE} (N = {dsr.get('trials')} trials)"
        )
    if doc.get("servable") is False:
        problems.append(
            f"candidate {doc.get('chosen')} cannot be served yet"
            " (the prediction service loads CatBoost models only)"
        )
    return problems


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)
