"""The champion's predictions for feature rows, memoised, with advice, age and staleness."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from inference.advice import advice_of
from inference.champion import ChampionModel
from inference.convert import duration_from_timedelta, timestamp_from_us
from inference.requests import Series, interval_step
from inference.store import features_frame
from klinehouse.v1 import prediction_service_pb2


class Predictor:
    """The champion's predictions for feature rows, with advice, age and staleness.

    A prediction is a pure function of the model and the feature row, so each
    champion's outputs are memoised by (model version, feature row): a bar's
    features are predicted once, however many clients ask until the next bar, and
    the champions of several (market, interval) pairs share the cache.
    """

    def __init__(self, max_entries: int = 8192) -> None:
        self._max = max_entries
        self._cache: dict[tuple[Any, ...], tuple[float, float]] = {}

    def _outputs(
        self, model: ChampionModel, rows: Sequence[tuple[Any, ...]]
    ) -> list[tuple[float, float]]:
        keys = [(model.version, *row) for row in rows]
        missing = [i for i, key in enumerate(keys) if key not in self._cache]
        if missing:
            out = model.predict(features_frame([rows[i] for i in missing]))
            if len(self._cache) + len(missing) > self._max:
                self._cache.clear()
            for i, p_up, ret in zip(
                missing,
                out["p_up"].to_list(),
                out["expected_log_return"].to_list(),
                strict=True,
            ):
                self._cache[keys[i]] = (float(p_up), float(ret))
        return [self._cache[key] for key in keys]

    def __call__(
        self,
        model: ChampionModel,
        rows: Sequence[tuple[Any, ...]],
        series: Series,
        now: datetime | None = None,
    ) -> list[prediction_service_pb2.Prediction]:
        if not rows:
            return []
        outputs = self._outputs(model, rows)
        now = now or datetime.now(UTC)
        step = interval_step(series.interval)
        result = []
        for row, (p_up, exp_ret) in zip(rows, outputs, strict=True):
            symbol, open_us = row[0], row[1]
            closed = datetime.fromtimestamp(open_us / 1e6, UTC) + step
            age = max(timedelta(0), now - closed)
            result.append(
                prediction_service_pb2.Prediction(
                    market=series.market_proto,  # type: ignore[arg-type]
                    symbol=symbol,
                    interval=series.interval,
                    p_up=p_up,
                    expected_log_return=exp_ret,
                    advice=advice_of(p_up, model),  # type: ignore[arg-type]
                    model_version=model.version,
                    feature_open_time=timestamp_from_us(open_us),
                    feature_age=duration_from_timedelta(age),
                    stale=age > 2 * step,
                    buy_threshold=model.buy_threshold,
                    sell_threshold=model.sell_threshold,
                    candidate=model.candidate,
                    horizon_bars=model.horizon_bars,
                    target=model.target,
                )
            )
        return result
