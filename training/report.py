"""The run folder a person reads: metrics.json, three PNG plots and summary.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

# Figure without pyplot: no global backend state, no display needed on servers and in CI
from matplotlib.figure import Figure

from klinehouse import times
from training import metrics as m
from training import report_candidates
from training.backtest import equity_curve
from training.records import Classification, FoldReport, Metrics, Regression, jsonable

_STRATEGY_LABELS = {"model": "model advice", "buy_and_hold": "buy and hold", "momentum": "momentum"}


def _plot_equity(
    returns: dict[str, pl.DataFrame],
    path: Path,
    fee_rate: float,
    *,
    folds: list[FoldReport] | None = None,
    candidates: dict[str, pl.DataFrame] | None = None,
    chosen: str | None = None,
) -> None:
    fig = Figure(figsize=(11, 5.5))
    ax = fig.subplots()
    for name, frame in (candidates or {}).items():
        if name != chosen:  # the chosen one is "model advice" below
            curve = equity_curve(frame)
            ax.plot(
                curve["open_time"].to_list(),
                curve["equity"].to_numpy(),
                lw=0.8,
                alpha=0.6,
                label=f"candidate {name}",
            )
    for name, frame in returns.items():
        curve = equity_curve(frame)
        label = _STRATEGY_LABELS.get(name, name)
        ax.plot(
            curve["open_time"].to_list(),
            curve["equity"].to_numpy(),
            label=f"{label} ({chosen})" if name == "model" and chosen else label,
            lw=1.8 if name == "model" else 1.2,
        )
    for k, fold in enumerate(folds or []):
        start = times.parse_iso(fold.test_start)
        ax.axvline(
            start,  # type: ignore[arg-type]
            color="black",
            ls=":",
            lw=0.9,
            label="fold boundary" if k == 0 else None,
        )
        ax.annotate(
            f"fold {fold.number}",
            (start, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=8,
        )
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_title(
        f"Out-of-sample equity, net of {fee_rate:.2%} per side (walk-forward test windows)"
    )
    ax.set_ylabel("equity (start = 1)")
    ax.legend(fontsize=8, loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _plot_importance(
    importance: dict[str, float],
    path: Path,
    title: str = "registered classifier (CatBoost PredictionValuesChange)",
) -> None:
    names = sorted(importance, key=importance.__getitem__)
    fig = Figure(figsize=(8, 5.5))
    ax = fig.subplots()
    ax.barh(names, [importance[n] for n in names])
    # two short lines: a long one-line title is cut at the figure's edge
    ax.set_title(f"Feature importance\n{title}", fontsize=11)
    ax.set_xlabel("importance")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _plot_calibration(predictions: pl.DataFrame, path: Path) -> list[dict[str, float]]:
    # the chosen candidate's own target (the next bar's direction for the reference pair)
    y = predictions["y_chosen" if "y_chosen" in predictions.columns else "target_up"].to_numpy()
    curve = m.calibration_curve(y, predictions["p_up"].to_numpy(), bins=10)
    fig = Figure(figsize=(5.5, 5.5))
    ax = fig.subplots()
    predicted = [c["predicted"] for c in curve]
    observed = [c["observed"] for c in curve]
    ax.plot(predicted, observed, "o-", label="chosen candidate (test windows)")
    for i, (x, obs, c) in enumerate(zip(predicted, observed, curve, strict=True)):
        # alternately below and above the point: neighbouring bins' counts do not overlap
        ax.annotate(
            f"n={c['n']}",
            (x, obs),
            xytext=(-12, -13 if i % 2 else 7),
            textcoords="offset points",
            fontsize=7,
        )
    lo, hi = min(*predicted, float(np.mean(y))) - 0.02, max(*predicted, float(np.mean(y))) + 0.02
    ax.plot([lo, hi], [lo, hi], "--", color="grey", label="perfect calibration")
    ax.set_xlabel("predicted probability, decile mean (n = bars per bin)")
    ax.set_ylabel("observed frequency of the target")
    ax.set_title("Calibration (out of sample)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return curve


def _fmt(value: Any, spec: str) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and not np.isfinite(value))
        else format(value, spec)
    )


def _summary(doc: dict[str, Any], o: Metrics) -> str:
    lines = [
        f"# Training run {doc['version']}",
        "",
        f"- data: {doc['spec']['market']} {doc['spec']['interval']}, symbols "
        f"{', '.join(doc['symbols'])}, {doc['rows']} labelled rows, "
        f"{doc['train_start']} → {doc['train_end']}",
        f"- evaluation: {len(o.folds)} walk-forward folds, purge {doc['eval_config']['purge_bars']} "
        f"bar(s) + embargo {doc['eval_config']['embargo_bars']} bars, {o.test_rows} test rows; "
        f"fee {doc['eval_config']['fee_rate']:.2%} per side",
        f"- registry: **{doc.get('status', 'not registered')}** — {doc.get('reason', '')}",
        f"- advice thresholds of the registered model: buy at P(up) ≥ {doc['buy_threshold']:.2f}, "
        f"sell at P(up) ≤ {doc['sell_threshold']:.2f}",
        "",
        "## Forecasts, out of sample",
        "",
        "| model | AUC | log loss | Brier | accuracy |",
        "|---|---|---|---|---|",
    ]
    forecasts: dict[str, Classification | None] = {
        "classifier": o.classifier,
        "majority": o.majority,
        "momentum": o.momentum,
        "shuffled_labels": o.shuffled_labels,
    }
    for name, c in forecasts.items():
        if c is not None:
            lines.append(
                f"| {name} | {_fmt(c.auc, '.4f')} | {_fmt(c.log_loss, '.5f')} | "
                f"{_fmt(c.brier, '.5f')} | {_fmt(c.accuracy, '.4f')} |"
            )
    reg = o.regressor or Regression()
    zero = o.zero_return or Regression()
    lines += [
        "",
        f"Regressor: MAE {_fmt(reg.mae, '.6f')} (predicting 0: "
        f"{_fmt(zero.mae, '.6f')}), information coefficient "
        f"{_fmt(reg.ic, '.4f')}.",
    ]
    if o.leakage_check is not None:
        leak = o.leakage_check
        verdict = "passed" if leak.passed else "FAILED"
        lines.append(
            f"Leakage check (labels shuffled in training): test AUC "
            f"{_fmt(leak.shuffled_label_auc, '.4f')}, {verdict} (0.5 ± {leak.tolerance})."
        )
    lines += [
        "",
        "## Backtest of the advice, net of fees, same test bars",
        "",
        "| strategy | net return | gross return | Sharpe | max drawdown | hit rate | turnover/bar | exposure |",
        "|---|---|---|---|---|---|---|---|",
    ]
    bt = o.backtest
    for name, s in (
        ("model", bt.model),
        ("buy_and_hold", bt.buy_and_hold),
        ("momentum", bt.momentum),
    ):
        lines.append(
            f"| {_STRATEGY_LABELS.get(name, name)} | {_fmt(s.net_return, '+.2%')} | "
            f"{_fmt(s.gross_return, '+.2%')} | {_fmt(s.sharpe, '.2f')} | "
            f"{_fmt(s.max_drawdown, '.2%')} | {_fmt(s.hit_rate, '.2%')} | "
            f"{_fmt(s.turnover, '.3f')} | {_fmt(s.exposure, '.2%')} |"
        )
    lines += [
        "",
        "## Folds",
        "",
        "| fold | train | test | AUC | log loss (majority) | net (buy & hold) | thresholds |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in o.folds:
        sc, fb = f.scores, f.backtest
        lines.append(
            f"| {f.number} | … {f.train_end[:16]} | {f.test_start[:16]} … {f.test_end[:16]} | "
            f"{_fmt(sc.classifier.auc, '.4f')} | {_fmt(sc.classifier.log_loss, '.5f')} "
            f"({_fmt(sc.majority.log_loss, '.5f')}) | {_fmt(fb.model.net_return, '+.2%')} "
            f"({_fmt(fb.buy_and_hold.net_return, '+.2%')}) | "
            f"{f.buy_threshold:.2f}/{f.sell_threshold:.2f} |"
        )
    lines += [
        "",
        "![equity](equity.png)",
        "",
        "![calibration](calibration.png) ![importance](feature_importance.png)",
        "",
        "Backtest: positions decided at each bar's close, earning the next bar's return; "
        "equal weight across symbols; entry and exit fees always paid; no slippage beyond the fee.",
        "",
    ]
    return "\n".join(lines)


def write_report(
    folder: Path,
    doc: dict[str, Any],
    *,
    returns: dict[str, pl.DataFrame],
    predictions: pl.DataFrame,
    importance: dict[str, float],
    candidate_returns: dict[str, pl.DataFrame] | None = None,
) -> Path:
    """Write the run folder; returns the path of summary.md."""
    folder.mkdir(parents=True, exist_ok=True)
    metrics = Metrics.of(jsonable(doc["metrics"]))
    _plot_equity(
        returns,
        folder / "equity.png",
        doc["eval_config"]["fee_rate"],
        folds=metrics.folds,
        candidates=candidate_returns,
        chosen=metrics.chosen,
    )
    _plot_importance(
        importance,
        folder / "feature_importance.png",
        title=f"registered {doc.get('candidate', 'classifier')}"
        + (
            " (CatBoost PredictionValuesChange)"
            if doc.get("linear_model") is None
            else " (|coefficient|, standardised)"
        ),
    )
    doc = {**doc, "calibration": _plot_calibration(predictions, folder / "calibration.png")}
    (folder / "metrics.json").write_text(json.dumps(jsonable(doc), indent=2))
    summary = folder / "summary.md"
    summary.write_text(_summary(jsonable(doc), metrics) + report_candidates.markdown(metrics))
    return summary
