"""The selection-bias guards on cases computed by hand or by an independent formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from klinehouse.errors import KlinehouseError
from training.selection import (
    EULER_GAMMA,
    backtest_overfitting,
    bootstrap_difference,
    deflated_sharpe,
    expected_max_sharpe,
    probabilistic_sharpe,
)


def _blocks(*rows: list[float], repeat: int = 2) -> np.ndarray:
    return np.array([row for row in rows for _ in range(repeat)], dtype=np.float64)


def test_pbo_on_a_four_column_matrix_with_four_splits() -> None:
    # Blocks 1-2 favour A (A=6, B=0, C=2, D=3), blocks 3-4 favour B (A=0, B=5, C=3, D=2).
    # C(4, 2) = 6 splits:
    # - in sample {1,2}: A is best (6); out of sample {3,4} A is worst: rank 1, logit < 0
    # - in sample {3,4}: B is best (5); out of sample {1,2} B is worst: rank 1, logit < 0
    # - the four mixed splits: in sample means A=3, B=2.5, C=2.5, D=2.5, A is best, and
    #   out of sample (the same mix) A is best again: rank 4, omega 4/5, logit ln 4 > 0
    # PBO = 2/6.
    a_wins, b_wins = [6.0, 0.0, 2.0, 3.0], [0.0, 5.0, 3.0, 2.0]
    matrix = _blocks(a_wins, a_wins, b_wins, b_wins)
    result = backtest_overfitting(matrix, splits=4, metric="mean")
    assert result.combinations == 6 and result.columns == 4
    assert result.probability == pytest.approx(2 / 6)
    assert sorted(result.logits) == pytest.approx(
        [math.log(0.2 / 0.8)] * 2 + [math.log(0.8 / 0.2)] * 4
    )


def test_pbo_is_zero_when_one_column_dominates_everywhere() -> None:
    rng = np.random.default_rng(1)
    matrix = rng.normal(0.0, 0.01, size=(400, 5))
    matrix[:, 2] += 0.05  # far better on every subset of bars
    assert backtest_overfitting(matrix, splits=8).probability == 0.0
    # the reverse: a column best on one half and worst on the other is always a bad pick
    half = np.where(np.arange(400)[:, None] < 200, [[0.05, 0.0, 0.01]], [[-0.05, 0.0, 0.01]])
    noise = rng.normal(0.0, 0.001, size=(400, 3))
    assert backtest_overfitting(half + noise, splits=2).probability == 1.0


def test_pbo_refuses_bad_shapes() -> None:
    with pytest.raises(KlinehouseError, match="two candidates"):
        backtest_overfitting(np.zeros((40, 1)), splits=4)
    with pytest.raises(KlinehouseError, match="even number"):
        backtest_overfitting(np.zeros((40, 3)), splits=3)


def _independent_dsr(r: np.ndarray, trials: np.ndarray) -> float:
    """Bailey & López de Prado (2014), eq. for SR0 and the PSR, with scipy's moments."""
    n = len(trials)
    v = np.var(trials, ddof=1)
    sr0 = math.sqrt(v) * (
        (1 - np.euler_gamma) * stats.norm.ppf(1 - 1 / n)
        + np.euler_gamma * stats.norm.ppf(1 - 1 / (n * math.e))
    )
    sr = r.mean() / r.std(ddof=1)
    g3 = stats.skew(r)
    g4 = stats.kurtosis(r, fisher=False)
    z = (sr - sr0) * math.sqrt(len(r) - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    return float(stats.norm.cdf(z))


def test_deflated_sharpe_matches_the_paper_formula() -> None:
    rng = np.random.default_rng(3)
    r = rng.standard_t(df=4, size=2000) * 0.01 + 0.001  # fat tails, positive drift
    trials = rng.normal(0.0, 0.02, size=30)
    got = deflated_sharpe(r, trials)
    assert got.trials == 30
    assert got.kurtosis > 3.5  # fat tails are seen
    assert got.probability == pytest.approx(_independent_dsr(r, trials), rel=1e-9)
    assert pytest.approx(np.euler_gamma) == EULER_GAMMA


def test_more_trials_deflate_more() -> None:
    # E[max SR] by hand for N = 2: sqrt(V) * ((1-g) z(1/2) + g z(1 - 1/(2e)))
    by_hand = 0.1 * (EULER_GAMMA * stats.norm.ppf(1 - 1 / (2 * math.e)))
    assert expected_max_sharpe(2, 0.01) == pytest.approx(by_hand)
    assert expected_max_sharpe(1, 0.01) == 0.0
    assert expected_max_sharpe(100, 0.01) > expected_max_sharpe(10, 0.01)
    # one trial: the DSR is the probabilistic Sharpe ratio against 0
    rng = np.random.default_rng(4)
    r = rng.normal(0.0005, 0.01, size=1000)
    one = deflated_sharpe(r, [0.05])
    assert one.expected_max_sharpe == 0.0
    assert one.probability == pytest.approx(
        probabilistic_sharpe(one.sharpe, 0.0, 1000, one.skew, one.kurtosis)
    )
    many = deflated_sharpe(r, rng.normal(0.0, 0.03, size=200))
    assert many.probability < one.probability


def test_block_bootstrap_bound() -> None:
    # constant per-bar returns: every resample is the observed path, the bound is exact
    t = 500
    exact = bootstrap_difference(np.full(t, 0.001), np.zeros(t), block_bars=24, resamples=50)
    assert exact.difference == pytest.approx(1.001**t - 1.0)
    assert exact.log_difference == pytest.approx(t * math.log(1.001))
    assert exact.lower == pytest.approx(exact.log_difference)
    assert exact.block_bars == 24
    rng = np.random.default_rng(5)
    base = rng.normal(0.0, 0.01, size=t)
    # a strong steady edge over b: the bound stays above 0; noise around b: it does not
    edge = bootstrap_difference(base + 0.002, base, resamples=200)
    assert edge.lower > 0
    noise = bootstrap_difference(base + rng.normal(0.0, 0.01, size=t), base, resamples=200)
    assert noise.lower < 0 < noise.lower + 1.0
    assert noise.lower < noise.log_difference
    # the bound's sign is the compounded difference's: a loses to b exactly when the log
    # growth difference is negative
    assert (noise.difference > 0) == (noise.log_difference > 0)
    with pytest.raises(KlinehouseError, match="same length"):
        bootstrap_difference(np.zeros(3), np.zeros(4))
