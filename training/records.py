"""Typed records of the registry: `Metrics` (the out-of-sample scores of one training
run) and `ModelRecord` (one row of `ml.model_registry`).

They are read from and written to the registry's JSON as it always was: every
field the training writes has a name here, unknown fields are kept (`extra`), so
a document may gain fields and old rows still load. NaN and infinities are
stored as null (PostgreSQL's jsonb rejects them) and read back as None.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


def jsonable(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become null (PostgreSQL's jsonb rejects them)."""
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump(exclude_unset=True))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def formatted(value: float | None, spec: str) -> str:
    """A score that may be undefined (NaN, stored as null) formatted as 'nan', as before."""
    return format(float("nan") if value is None else value, spec)


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    def to_json(self) -> dict[str, Any]:
        """The stored form: the fields that were set (and any extra ones), NaN as null."""
        return dict(jsonable(self))


class Classification(_Record):
    """Scores of P(up) against the realised direction."""

    log_loss: float
    auc: float | None = None
    brier: float | None = None
    accuracy: float | None = None


class Regression(_Record):
    """Scores of the expected next log return."""

    mae: float | None = None
    ic: float | None = None


class Strategy(_Record):
    """One strategy's backtest over the test bars (see `training.backtest.summary`)."""

    net_return: float
    gross_return: float | None = None
    sharpe: float | None = None
    max_drawdown: float | None = None
    hit_rate: float | None = None
    turnover: float | None = None
    exposure: float | None = None
    fees_paid: float | None = None
    bars: int | None = None


class Backtests(_Record):
    model: Strategy
    buy_and_hold: Strategy
    momentum: Strategy


class LeakageCheck(_Record):
    passed: bool
    shuffled_label_auc: float | None = None
    tolerance: float | None = None


class Scores(_Record):
    """Out-of-sample scores of the forecasts on some test rows."""

    classifier: Classification
    majority: Classification
    momentum: Classification
    regressor: Regression | None = None
    zero_return: Regression | None = None
    shuffled_labels: Classification | None = None
    up_rate: float | None = None


class FoldCandidate(_Record):
    """One candidate in one fold: its fit and the thresholds chosen on the validation rows."""

    iterations: int | None = None
    buy_threshold: float
    sell_threshold: float
    validation_net_return: float | None = None
    validation_sharpe: float | None = None


class CandidateScores(_Record):
    """One candidate on every fold's test bars (`training.evaluate`'s candidates' table)."""

    description: str = ""
    family: str | None = None
    horizon: int | None = None
    target: str
    target_rate: float | None = None
    forecast: Classification
    majority_log_loss: float | None = None
    momentum_log_loss: float | None = None
    ic: float | None = None
    backtest: Strategy
    validation_sharpe: float | None = None
    validation_net_return: float | None = None
    thresholds: list[list[float]] = Field(default_factory=list)
    never_trades_in_folds: list[int] = Field(default_factory=list)
    deflated_sharpe: float | None = None


class DeflatedSharpe(_Record):
    """`training.selection.DeflatedSharpe` as stored (NaN as None)."""

    probability: float | None = None
    sharpe: float | None = None
    expected_max_sharpe: float | None = None
    trials: int | None = None
    trial_sharpe_variance: float | None = None
    skew: float | None = None
    kurtosis: float | None = None
    bars: int | None = None


class BootstrapBound(_Record):
    """`training.selection.BootstrapBound` as stored: the chosen advice over buy-and-hold."""

    difference: float | None = None
    log_difference: float | None = None
    lower: float | None = None
    confidence: float | None = None
    block_bars: int | None = None
    resamples: int | None = None


class Overfitting(_Record):
    """`training.selection.Overfitting` as stored (the PBO by CSCV)."""

    probability: float | None = None
    splits: int | None = None
    combinations: int | None = None
    columns: int | None = None
    median_logit: float | None = None


class Trials(_Record):
    candidates: int | None = None
    threshold_settings: int | None = None
    trading: int | None = None


class Guards(_Record):
    """The selection-bias guards of the chosen candidate (`training.selection`)."""

    deflated_sharpe: DeflatedSharpe
    bootstrap: BootstrapBound
    pbo: Overfitting | None = None
    trials: Trials | None = None


class FoldReport(_Record):
    """One walk-forward fold: its windows (ISO times), rows, thresholds and scores."""

    number: int
    train_start: str | None = None
    train_end: str
    test_start: str
    test_end: str
    train_rows: int | None = None
    test_rows: int | None = None
    train_last_open_time: str | None = None
    test_first_open_time: str | None = None
    classifier_iterations: int | None = None
    regressor_iterations: int | None = None
    buy_threshold: float
    sell_threshold: float
    scores: Scores
    backtest: Backtests
    never_trades: bool | None = None
    candidates: dict[str, FoldCandidate] = Field(default_factory=dict)


class Metrics(Scores):
    """The out-of-sample scores the promotion rule compares (`registry.decide`): those of
    every fold's test rows together (of the chosen candidate), their backtests, each
    fold's report, every candidate's scores and the chosen one's guards. A row stored
    before the candidates has none of the last four: `chosen`, `guards` and `servable`
    are None, `candidates` empty."""

    backtest: Backtests
    leakage_check: LeakageCheck | None = None
    test_rows: int | None = None
    folds: list[FoldReport] = Field(default_factory=list)
    chosen: str | None = None
    candidates: dict[str, CandidateScores] = Field(default_factory=dict)
    guards: Guards | None = None
    servable: bool | None = None

    @classmethod
    def of(cls, document: dict[str, Any]) -> Metrics:
        """Metrics from a stored or freshly computed document (NaN becomes None)."""
        return cls.model_validate(jsonable(document))


class SeriesFingerprint(_Record):
    rows: int
    last_open_time: str


class ModelRecord(_Record):
    """One row of `ml.model_registry` (status, created_at … are set by the registry)."""

    version: str
    market: str
    interval: str
    symbols: list[str]
    features: list[str]
    train_start: datetime
    train_end: datetime
    buy_threshold: float
    sell_threshold: float
    allow_short: bool
    fee_rate: float
    seed: int
    code_version: str
    data_fingerprint: dict[str, SeriesFingerprint]
    metrics: Metrics
    artifact_uri: str
    # what the stored (served) classifier predicts: the chosen candidate when it can be
    # served, else the reference CatBoost pair (`metrics.chosen` names the evaluated
    # choice); its target is a column of marts.candle_labels or a fee-aware one derived
    # from them (`training.candidates.Candidate.target`), `horizon_bars` bars ahead
    candidate: str
    horizon_bars: int
    target: str
    status: str = "challenger"
    status_reason: str = ""
    created_at: datetime | None = None
    promoted_at: datetime | None = None
