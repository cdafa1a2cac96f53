"""The champion's predictions over the chart's bars, and a registered model's curves.

The champion is loaded once per version (`training.registry.load_champion`) and reloaded when
`champion_version()` (one indexed row) changes. A model's equity curve against buy-and-hold is
chained from the walk-forward folds `ml.model_registry.metrics` stores (contiguous test
windows); its calibration is the one the training report put beside the model in the lake.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from dashboard.queries import FeatureRow
from klinehouse import lake
from klinehouse.db import connect
from klinehouse.features import NUMERIC_FEATURES
from klinehouse.settings import Settings
from training.registry import ChampionModel, load_champion


@dataclass(frozen=True)
class Prediction:
    open_time: datetime  # where the chart draws it (the bucket's start)
    p_up: float
    expected_log_return: float
    advice: str


@dataclass(frozen=True)
class Champion:
    model: ChampionModel
    market: str
    interval: str

    def serves(self, market: str, interval: str) -> bool:
        return (self.market, self.interval) == (market, interval)


# the registry's partial unique index on the champion answers this (one row)
_CHAMPION_SQL = "SELECT version, market, interval FROM ml.model_registry WHERE status = 'champion'"


class ChampionCache:
    """The current champion, reloaded only when the registry names another one."""

    def __init__(self, url: str, settings: Settings) -> None:
        self._url = url
        self._settings = settings
        self._lock = threading.Lock()
        self._champion: Champion | None = None

    def get(self) -> Champion | None:
        with connect(self._url) as conn:
            row = conn.execute(_CHAMPION_SQL).fetchone()
        with self._lock:
            if row is None:
                self._champion = None
            elif self._champion is None or self._champion.model.version != row[0]:
                model = load_champion(self._url, settings=self._settings)
                self._champion = Champion(model, row[1], row[2]) if model else None
            return self._champion


def predict(model: ChampionModel, symbol: str, rows: list[FeatureRow]) -> list[Prediction]:
    """P(up), the expected log return and the advice of each feature row with every feature."""
    usable = [r for r in rows if all(r.values.get(n) is not None for n in NUMERIC_FEATURES)]
    if not usable:
        return []
    frame = pl.DataFrame(
        {
            **{n: [r.values[n] for r in usable] for n in NUMERIC_FEATURES},
            "symbol": [symbol] * len(usable),
        },
        schema={**dict.fromkeys(NUMERIC_FEATURES, pl.Float64), "symbol": pl.String},
    )
    out = model.predict(frame)
    return [
        Prediction(r.open_time, float(p), float(e), model.advice(float(p)))
        for r, p, e in zip(
            usable, out["p_up"].to_list(), out["expected_log_return"].to_list(), strict=True
        )
    ]


@dataclass(frozen=True)
class EquityPoint:
    time: str
    model: float
    buy_and_hold: float


def equity_curve(metrics: dict[str, Any]) -> list[EquityPoint]:
    """Equity (start = 1) of the advice and of buy-and-hold at the end of each test window."""
    folds = sorted(metrics.get("folds") or [], key=lambda f: f.get("test_start", ""))
    if not folds:
        return []
    points = [EquityPoint(folds[0]["test_start"], 1.0, 1.0)]
    model = hold = 1.0
    for fold in folds:
        backtest = fold.get("backtest") or {}
        model *= 1.0 + float((backtest.get("model") or {}).get("net_return") or 0.0)
        hold *= 1.0 + float((backtest.get("buy_and_hold") or {}).get("net_return") or 0.0)
        points.append(EquityPoint(fold["test_end"], model, hold))
    return points


@dataclass(frozen=True)
class CalibrationBin:
    predicted: float
    observed: float
    n: int


def calibration(artifact_uri: str, settings: Settings) -> list[CalibrationBin] | None:
    """The out-of-sample calibration bins of the training report in the lake (None if absent)."""
    bucket, _, prefix = artifact_uri.removeprefix("s3://").partition("/")
    try:
        body = (
            lake.s3_client(settings)
            .get_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/report/metrics.json")["Body"]
            .read()
        )
        bins = json.loads(body).get("calibration") or []
    except Exception:  # botocore's error classes are generated at run time
        return None
    return [CalibrationBin(float(b["predicted"]), float(b["observed"]), int(b["n"])) for b in bins]
