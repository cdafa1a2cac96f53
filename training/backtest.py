"""A backtest of the advice, after fees, beside buy-and-hold and momentum.

Each symbol holds a position in {-1, 0, 1} decided at bar t's close and earns the
next bar's simple return exp(target_log_return_1) - 1; every change of position
pays `fee_rate` per unit traded (taker fee per side, 0.1% by default). The
portfolio is equal-weighted across the symbols present at each bar and rebalanced
each bar (rebalancing fees between symbols are ignored: it is a signal backtest,
not an execution simulator). Every strategy starts and ends flat in each test
window, so entry and exit fees are always paid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from klinehouse.features import LABEL_RETURN
from klinehouse.klines import INTERVALS

DEFAULT_FEE_RATE = 0.001


@dataclass(frozen=True)
class Advice:
    """Long when P(up) >= buy, flat (or short) when P(up) <= sell, else keep the position."""

    buy_threshold: float
    sell_threshold: float
    allow_short: bool = False

    def signal(self, p_up: float) -> Signal:
        """The advice rule (the backtest's and the service's): buy at P(up) >= buy,
        sell at P(up) <= sell, otherwise hold (keep the position)."""
        if p_up >= self.buy_threshold:
            return "buy"
        if p_up <= self.sell_threshold:
            return "sell"
        return "hold"


Signal = Literal["buy", "sell", "hold"]


def advice_positions(frame: pl.DataFrame, p_col: str, advice: Advice) -> pl.Series:
    """Positions per row of `frame` (sorted by open_time), with hysteresis per symbol."""
    out = np.zeros(frame.height, dtype=np.float64)
    low = -1.0 if advice.allow_short else 0.0
    p_all = frame.get_column(p_col).to_numpy()
    index = frame.with_row_index("_i").group_by("symbol", maintain_order=True).agg("_i")
    for rows in index.get_column("_i").to_list():
        position = 0.0
        for i in rows:  # a state machine: the hysteresis needs the previous position
            signal = advice.signal(p_all[i])
            if signal == "buy":
                position = 1.0
            elif signal == "sell":
                position = low
            out[i] = position
    return pl.Series("position", out)


def momentum_positions(frame: pl.DataFrame, *, allow_short: bool = False) -> pl.Series:
    """Previous-bar direction: long after an up bar, flat (or short) after a down bar."""
    r = frame.get_column("log_return_1").fill_null(0.0).to_numpy()
    return pl.Series("position", np.where(r > 0, 1.0, -1.0 if allow_short else 0.0))


def run(
    frame: pl.DataFrame, positions: pl.Series, *, fee_rate: float = DEFAULT_FEE_RATE
) -> pl.DataFrame:
    """Per-bar portfolio returns: columns open_time, gross, fees, net, exposure, turnover."""
    df = frame.select("symbol", "open_time", LABEL_RETURN).with_columns(positions.alias("position"))
    df = df.sort("symbol", "open_time").with_columns(
        pl.col("position").shift(1, fill_value=0.0).over("symbol").alias("_prev"),
        (pl.col("open_time") == pl.col("open_time").max().over("symbol")).alias("_last"),
    )
    # trade into each position at its bar's close; close out after the window's last bar
    df = df.with_columns(
        (
            (pl.col("position") - pl.col("_prev")).abs()
            + pl.when(pl.col("_last")).then(pl.col("position").abs()).otherwise(0.0)
        ).alias("traded"),
        (pl.col("position") * (pl.col(LABEL_RETURN).exp() - 1.0)).alias("gross"),
    )
    return (
        df.group_by("open_time")
        .agg(
            pl.col("gross").mean(),
            (pl.col("traded") * fee_rate).mean().alias("fees"),
            pl.col("position").abs().mean().alias("exposure"),
            pl.col("traded").mean().alias("turnover"),
            ((pl.col("position") != 0) & (pl.col("gross") > 0)).sum().alias("_hits"),
            (pl.col("position") != 0).sum().alias("_active"),
        )
        .with_columns((pl.col("gross") - pl.col("fees")).alias("net"))
        .sort("open_time")
    )


def summary(returns: pl.DataFrame, interval: str) -> dict[str, float]:
    """Cumulative net return, annualised Sharpe, maximum drawdown, hit rate, turnover."""
    net = returns.get_column("net").to_numpy()
    gross = returns.get_column("gross").to_numpy()
    equity = np.cumprod(1.0 + net)
    peak = np.maximum.accumulate(np.concatenate(([1.0], equity)))[1:]
    length = INTERVALS.get(interval)
    bars_per_year = (365.25 * 86400 / length.total_seconds()) if length else 12.0
    std = float(net.std(ddof=1)) if len(net) > 1 else 0.0
    active = int(returns.get_column("_active").sum())
    return {
        "net_return": float(equity[-1] - 1.0) if len(equity) else 0.0,
        "gross_return": float(np.prod(1.0 + gross) - 1.0) if len(gross) else 0.0,
        "sharpe": float(net.mean() / std * math.sqrt(bars_per_year)) if std > 0 else 0.0,
        "max_drawdown": float((1.0 - equity / peak).max()) if len(equity) else 0.0,
        "hit_rate": float(returns.get_column("_hits").sum() / active) if active else float("nan"),
        "turnover": float(np.mean(returns.get_column("turnover").to_numpy())) if len(net) else 0.0,
        "exposure": float(np.mean(returns.get_column("exposure").to_numpy())) if len(net) else 0.0,
        "fees_paid": float(np.sum(returns.get_column("fees").to_numpy())),
        "bars": len(net),
    }


def equity_curve(returns: pl.DataFrame) -> pl.DataFrame:
    return returns.select("open_time", (1.0 + pl.col("net")).cum_prod().alias("equity"))
