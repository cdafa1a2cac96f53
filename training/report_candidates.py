"""The report's sections on the candidates: the side-by-side table, the selection-bias
guards and a sentence for each fold in which the chosen advice never trades."""

from __future__ import annotations

from typing import Any

import numpy as np

from training.records import Metrics


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return format(value, spec)


def candidates_table(o: Metrics) -> list[str]:
    """Markdown lines: every candidate on the same test bars, the chosen one in bold."""
    if not o.candidates:
        return []
    bh = o.backtest.buy_and_hold
    lines = [
        "| candidate | target | AUC | log loss (majority) | IC | net | gross | Sharpe | max DD"
        " | turnover/bar | deflated Sharpe | validation Sharpe | never trades in folds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, c in o.candidates.items():
        f, b = c.forecast, c.backtest
        label = f"**{name}** (chosen)" if name == o.chosen else name
        never = ", ".join(str(k) for k in c.never_trades_in_folds) or "none"
        lines.append(
            f"| {label} | {c.target} ({_fmt(c.target_rate, '.1%')} up) | "
            f"{_fmt(f.auc, '.4f')} | {_fmt(f.log_loss, '.5f')} "
            f"({_fmt(c.majority_log_loss, '.5f')}) | {_fmt(c.ic, '.4f')} | "
            f"{_fmt(b.net_return, '+.2%')} | {_fmt(b.gross_return, '+.2%')} | "
            f"{_fmt(b.sharpe, '.2f')} | {_fmt(b.max_drawdown, '.2%')} | "
            f"{_fmt(b.turnover, '.3f')} | {_fmt(c.deflated_sharpe, '.3f')} | "
            f"{_fmt(c.validation_sharpe, '.2f')} | {never} |"
        )
    lines.append(
        f"| buy and hold | — | — | — | — | {_fmt(bh.net_return, '+.2%')} | "
        f"{_fmt(bh.gross_return, '+.2%')} | {_fmt(bh.sharpe, '.2f')} | "
        f"{_fmt(bh.max_drawdown, '.2%')} | {_fmt(bh.turnover, '.3f')} | — | — | — |"
    )
    return lines


def guards_lines(o: Metrics) -> list[str]:
    g = o.guards
    if g is None:
        return []
    dsr, boot, pbo = g.deflated_sharpe, g.bootstrap, g.pbo
    trials = g.trials
    lines = [
        f"- deflated Sharpe ratio of **{o.chosen}**: probability "
        f"{_fmt(dsr.probability, '.3f')} that its per-bar Sharpe {_fmt(dsr.sharpe, '.4f')} "
        f"beats the {_fmt(dsr.expected_max_sharpe, '.4f')} expected of the best of "
        f"N = {dsr.trials} unskilled trials ({trials.candidates if trials else None} candidates x "
        f"{trials.threshold_settings if trials else None} threshold settings; trials' Sharpe "
        f"variance {_fmt(dsr.trial_sharpe_variance, '.2e')}, skew {_fmt(dsr.skew, '.2f')}, "
        f"kurtosis {_fmt(dsr.kurtosis, '.1f')}, {dsr.bars} bars)",
        f"- block bootstrap ({boot.resamples} resamples, blocks of {boot.block_bars} bars): "
        f"net return over buy-and-hold {_fmt(boot.difference, '+.2%')} (log growth "
        f"{_fmt(boot.log_difference, '+.4f')}), {_fmt(boot.confidence, '.0%')} "
        f"lower bound on the log growth difference {_fmt(boot.lower, '+.4f')}",
    ]
    if pbo is not None:
        lines.append(
            f"- probability of backtest overfitting (CSCV over the {pbo.columns} candidates' "
            f"per-bar net returns, S = {pbo.splits}, {pbo.combinations} splits): "
            f"{_fmt(pbo.probability, '.2f')} (median logit {_fmt(pbo.median_logit, '.2f')})"
        )
    return lines


def never_trading_sentences(o: Metrics) -> list[str]:
    """A sentence for each fold whose chosen advice holds no position on its test window."""
    out = []
    for f in o.folds:
        if not f.never_trades:
            continue
        mine = f.candidates.get(o.chosen) if o.chosen else None
        val = mine.validation_net_return if mine else None
        why = (
            "on its validation window no threshold setting beat staying out after fees"
            f" (best net {_fmt(val, '+.2%')}), so the least-trading setting was kept"
            if val is not None and val <= 0
            else "its probabilities on the test window never reach the buy threshold"
        )
        out.append(
            f"Fold {f.number} never trades: {why}; with buy at ≥ {f.buy_threshold:.2f} and "
            f"sell at ≤ {f.sell_threshold:.2f} it holds no position from "
            f"{f.test_start[:16]} to {f.test_end[:16]}, earns 0 and pays no fee."
        )
    return out


def markdown(o: Metrics) -> str:
    """The candidates section of summary.md (empty for a run without candidates)."""
    table = candidates_table(o)
    if not table:
        return ""
    lines = [
        "",
        "## Candidates, same folds, features and test bars",
        "",
        "Thresholds and the choice (best mean validation Sharpe) use the inner validation "
        "windows only; the columns below are the test windows.",
        "",
        *table,
        "",
        "## Selection-bias guards",
        "",
        *guards_lines(o),
    ]
    sentences = never_trading_sentences(o)
    if sentences:
        lines += ["", *sentences]
    return "\n".join(lines) + "\n"


def chosen_line(o: Metrics) -> str | None:
    """One line: the chosen candidate and its guards (None for a run without guards)."""
    g = o.guards
    if g is None:
        return None
    dsr, boot, pbo = g.deflated_sharpe, g.bootstrap, g.pbo
    return (
        f"chosen {o.chosen} (best mean validation Sharpe):"
        f" deflated Sharpe {_fmt(dsr.probability, '.3f')} (N = {dsr.trials}),"
        f" PBO {_fmt(pbo.probability if pbo else None, '.2f')},"
        f" bootstrap {_fmt(boot.confidence, '.0%')} lower bound on the log growth over"
        f" buy-and-hold {_fmt(boot.lower, '+.4f')}"
    )


def console_lines(o: Metrics) -> list[str]:
    """The candidates and the guards as `klinehouse train` prints them."""
    if not o.candidates:
        return []
    head = (
        f"  {'candidate':<17}{'AUC':>7}{'logloss':>9}{'(major.)':>9}{'net':>9}{'gross':>9}"
        f"{'Sharpe':>8}{'maxDD':>8}{'turn/bar':>9}{'DSR':>7}{'val.Sh':>8}  never trades"
    )
    lines = [head]
    for name, c in o.candidates.items():
        f, b = c.forecast, c.backtest
        mark = "*" if name == o.chosen else " "
        lines.append(
            f" {mark}{name:<17}{_fmt(f.auc, '.4f'):>7}{_fmt(f.log_loss, '.5f'):>9}"
            f"{_fmt(c.majority_log_loss, '.5f'):>9}{_fmt(b.net_return, '+.2%'):>9}"
            f"{_fmt(b.gross_return, '+.2%'):>9}{_fmt(b.sharpe, '.2f'):>8}"
            f"{_fmt(b.max_drawdown, '.2%'):>8}{_fmt(b.turnover, '.3f'):>9}"
            f"{_fmt(c.deflated_sharpe, '.3f'):>7}{_fmt(c.validation_sharpe, '.2f'):>8}"
            f"  {', '.join(str(k) for k in c.never_trades_in_folds) or '-'}"
        )
    bh = o.backtest.buy_and_hold
    lines.append(
        f"  {'buy_and_hold':<17}{'':>7}{'':>9}{'':>9}{_fmt(bh.net_return, '+.2%'):>9}"
        f"{_fmt(bh.gross_return, '+.2%'):>9}{_fmt(bh.sharpe, '.2f'):>8}"
        f"{_fmt(bh.max_drawdown, '.2%'):>8}{_fmt(bh.turnover, '.3f'):>9}"
    )
    chosen = chosen_line(o)
    if chosen is not None:
        lines.append(f"  {chosen.replace('(best', '(* above, best', 1)}")
    return lines
