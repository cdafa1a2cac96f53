"""Selection-bias guards: how much of the chosen candidate's backtest is luck of the choice.

- The deflated Sharpe ratio (Bailey & López de Prado 2014): the probability that the
  chosen strategy's true Sharpe ratio exceeds the maximum Sharpe ratio expected among
  N unskilled trials, given the variance of the trials' Sharpe ratios and the returns'
  skew and kurtosis (per-bar Sharpe ratios, not annualised).
- The probability of backtest overfitting (Bailey, Borwein, López de Prado & Zhu 2015)
  by combinatorially symmetric cross-validation: split the bars into S blocks; for every
  choice of S/2 blocks as "in sample", take the best column in sample and see where it
  ranks among the columns on the other half; PBO is the share of splits where it ranks
  in the lower half (logit <= 0).
- A circular block bootstrap (Politis & Romano) lower bound on the net-return
  difference (in log growth) between two strategies over the same bars.

Plain numpy and the standard library's NormalDist: no scipy.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from klinehouse.errors import KlinehouseError

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()

FloatArray = npt.NDArray[np.float64]


def sharpe(returns: npt.ArrayLike) -> float:
    """Per-bar Sharpe ratio mean / std (ddof=1); 0 for a constant or too short series."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < 2:
        return 0.0
    std = float(r.std(ddof=1))
    return float(r.mean() / std) if std > 0 else 0.0


def moments(returns: npt.ArrayLike) -> tuple[float, float]:
    """(skewness, kurtosis) of the returns, population moments; kurtosis 3 is normal.
    A constant series counts as normal (0, 3)."""
    r = np.asarray(returns, dtype=np.float64)
    centred = r - r.mean()
    m2 = float(np.mean(centred**2)) if len(r) else 0.0
    if m2 <= 0:
        return 0.0, 3.0
    return float(np.mean(centred**3) / m2**1.5), float(np.mean(centred**4) / m2**2)


def expected_max_sharpe(n_trials: int, variance: float) -> float:
    """E[max SR] of `n_trials` unskilled trials whose Sharpe ratios have `variance`
    (the false strategy theorem's approximation); 0 for a single trial."""
    if n_trials < 1:
        raise KlinehouseError(f"n_trials must be at least 1, got {n_trials}")
    if n_trials == 1 or variance <= 0:
        return 0.0
    z = _NORMAL.inv_cdf
    return math.sqrt(variance) * (
        (1.0 - EULER_GAMMA) * z(1.0 - 1.0 / n_trials)
        + EULER_GAMMA * z(1.0 - 1.0 / (n_trials * math.e))
    )


def probabilistic_sharpe(
    sr: float, benchmark: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    """P(true SR > benchmark) given an observed per-bar `sr` over `n_obs` bars."""
    if n_obs < 2:
        return float("nan")
    variance = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    if variance <= 0:
        return float("nan")
    return _NORMAL.cdf((sr - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(variance))


@dataclass(frozen=True)
class DeflatedSharpe:
    sharpe: float  # per bar
    expected_max_sharpe: float  # the benchmark SR0 under N unskilled trials
    trials: int
    trial_sharpe_variance: float
    skew: float
    kurtosis: float
    bars: int
    probability: float  # the deflated Sharpe ratio, a probability

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def deflated_sharpe(
    returns: npt.ArrayLike, trial_sharpes: npt.ArrayLike, *, n_trials: int | None = None
) -> DeflatedSharpe:
    """The deflated Sharpe ratio of `returns` (the chosen strategy's per-bar returns).
    `trial_sharpes` are the per-bar Sharpe ratios of the trials on comparable bars (their
    variance); N is `n_trials` (every candidate x threshold setting tried) or their count."""
    r = np.asarray(returns, dtype=np.float64)
    trials = np.asarray(trial_sharpes, dtype=np.float64)
    n = len(trials) if n_trials is None else n_trials
    if n < 1 or n < len(trials):
        raise KlinehouseError(f"n_trials {n} is below the {len(trials)} trial Sharpe ratios given")
    variance = float(trials.var(ddof=1)) if len(trials) > 1 else 0.0
    sr0 = expected_max_sharpe(n, variance)
    sr = sharpe(r)
    skew, kurt = moments(r)
    return DeflatedSharpe(
        sharpe=sr,
        expected_max_sharpe=sr0,
        trials=n,
        trial_sharpe_variance=variance,
        skew=skew,
        kurtosis=kurt,
        bars=len(r),
        probability=probabilistic_sharpe(sr, sr0, len(r), skew, kurt),
    )


@dataclass(frozen=True)
class Overfitting:
    probability: float  # PBO: the share of splits whose in-sample best ranks low out of sample
    splits: int  # S, the number of blocks of bars
    combinations: int  # C(S, S/2)
    columns: int  # N, the candidates compared
    logits: tuple[float, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "probability": self.probability,
            "splits": self.splits,
            "combinations": self.combinations,
            "columns": self.columns,
            "median_logit": float(np.median(self.logits)),
        }


def _ranks(values: FloatArray) -> FloatArray:
    """1-based ranks (1 = lowest), ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1, dtype=np.float64)
    for v in np.unique(values):
        tied = values == v
        ranks[tied] = ranks[tied].mean()
    return ranks


def backtest_overfitting(
    matrix: npt.ArrayLike, *, splits: int = 16, metric: str = "sharpe"
) -> Overfitting:
    """PBO by CSCV over a T x N matrix of per-bar returns (rows in time order, one column
    per candidate). `metric` ranks a column on a set of rows: "sharpe" or "mean"."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] < 2:
        raise KlinehouseError("PBO needs a T x N matrix with at least two candidates (columns)")
    if splits < 2 or splits % 2:
        raise KlinehouseError(f"PBO needs an even number of splits >= 2, got {splits}")
    if m.shape[0] < 2 * splits:
        raise KlinehouseError(f"{m.shape[0]} bars are too few for {splits} splits")
    if metric not in ("sharpe", "mean"):
        raise KlinehouseError(f"unknown PBO metric {metric!r}: expected 'sharpe' or 'mean'")
    blocks = np.array_split(np.arange(m.shape[0]), splits)
    # per block: count, sum and sum of squares per column; any union of blocks from these
    count = np.array([len(b) for b in blocks], dtype=np.float64)
    total = np.stack([m[b].sum(axis=0) for b in blocks])
    squares = np.stack([(m[b] ** 2).sum(axis=0) for b in blocks])

    def score(chosen: list[int]) -> FloatArray:
        n = count[chosen].sum()
        mean = total[chosen].sum(axis=0) / n
        if metric == "mean":
            return np.asarray(mean, dtype=np.float64)
        var = (squares[chosen].sum(axis=0) - n * mean**2) / (n - 1)
        std = np.sqrt(np.maximum(var, 0.0))
        return np.where(std > 0, mean / np.where(std > 0, std, 1.0), 0.0)

    n_cols = m.shape[1]
    logits = []
    for inside in itertools.combinations(range(splits), splits // 2):
        outside = [k for k in range(splits) if k not in inside]
        best = int(np.argmax(score(list(inside))))
        omega = _ranks(score(outside))[best] / (n_cols + 1)
        logits.append(math.log(omega / (1.0 - omega)))
    probability = float(np.mean(np.asarray(logits) <= 0.0))
    return Overfitting(probability, splits, len(logits), n_cols, tuple(logits))


@dataclass(frozen=True)
class BootstrapBound:
    difference: float  # observed: compounded net return of a minus that of b, same bars
    log_difference: float  # observed: sum of ln(1 + a_t) - ln(1 + b_t)
    lower: float  # the `1 - confidence` quantile of the resampled log difference
    confidence: float
    block_bars: int
    resamples: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def bootstrap_difference(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    block_bars: int | None = None,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapBound:
    """Lower confidence bound on the net-return difference of a over b by a circular block
    bootstrap over bars: the pairs (a_t, b_t) are resampled together in blocks of
    `block_bars` (default T^(1/3), at least 1), keeping serial dependence within a block.

    The statistic is the difference in log growth, sum ln(1 + a_t) - ln(1 + b_t): it has
    the sign of the compounded difference (a beats b exactly when it is > 0), but does not
    scale with the level a volatile path happens to reach, so its bound is not dominated
    by buy-and-hold's path-level swings."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise KlinehouseError("the bootstrap needs two return series of the same length >= 2")
    if not 0.5 < confidence < 1.0 or resamples < 10:
        raise KlinehouseError("confidence must be in (0.5, 1) and resamples >= 10")
    n = len(x)
    block = min(block_bars or max(1, round(n ** (1.0 / 3.0))), n)
    n_blocks = math.ceil(n / block)
    d = np.log1p(x) - np.log1p(y)
    rng = np.random.default_rng(seed)
    stats = []
    batch = max(1, 2_000_000 // n)  # bounded memory: about 16 MB of indices per batch
    offsets = np.arange(block)
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        starts = rng.integers(0, n, size=(size, n_blocks))
        index = ((starts[:, :, None] + offsets) % n).reshape(size, -1)[:, :n]
        stats.append(d[index].sum(axis=1))
    resampled = np.concatenate(stats)
    return BootstrapBound(
        difference=float(np.expm1(np.log1p(x).sum()) - np.expm1(np.log1p(y).sum())),
        log_difference=float(d.sum()),
        lower=float(np.quantile(resampled, 1.0 - confidence)),
        confidence=confidence,
        block_bars=block,
        resamples=resamples,
    )
