"""Thin servicers of klinehouse.v1 over the typed functions of this package.

Every RPC goes through `_unary` / `_stream`, which map expected failures to a
status naming what was wrong: ServiceError to its own code, a lost database to
UNAVAILABLE, a statement timeout to DEADLINE_EXCEEDED, anything else to INTERNAL
(logged) — never UNKNOWN.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import grpc
import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from inference.champion import ChampionHolder, ChampionModel
from inference.convert import (
    candle_from_row,
    duration_from_timedelta,
    timestamp_from_us,
)
from inference.errors import ServiceError, invalid, precondition
from inference.listener import NotifyListener
from inference.requests import (
    MAX_PAGE,
    CandleRange,
    Series,
    check_unary_size,
    interval_step,
    parse_page_size,
    parse_range,
    parse_series,
    parse_symbol,
    parse_symbols,
    parse_time,
)
from inference.store import Store, features_frame
from klinehouse.v1 import (
    candle_service_pb2,
    candle_service_pb2_grpc,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
)

log = logging.getLogger(__name__)
Req = TypeVar("Req")
Resp = TypeVar("Resp")
STREAM_BATCH = 1000  # candles per StreamCandles message while replaying


def _status_of(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    if isinstance(exc, ServiceError):
        return exc.code, exc.message
    if isinstance(exc, pg_errors.QueryCanceled):
        return grpc.StatusCode.DEADLINE_EXCEEDED, "the query ran past the statement timeout"
    if isinstance(exc, pg_errors.UndefinedTable):
        return (
            grpc.StatusCode.FAILED_PRECONDITION,
            f"the warehouse lacks a table the service reads ({exc.diag.message_primary}): "
            "run `klinehouse transform`",
        )
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return (
            grpc.StatusCode.FAILED_PRECONDITION,
            f"the service's database role may not read it: {exc.diag.message_primary}",
        )
    if isinstance(exc, psycopg.OperationalError | PoolTimeout | OSError):
        return grpc.StatusCode.UNAVAILABLE, "the warehouse database is unavailable; retry later"
    if isinstance(exc, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed before the data was read"
    return None


def _unary(
    fn: Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]:
    @functools.wraps(fn)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
        try:
            return await fn(self, request, context)
        except Exception as exc:
            await _abort(exc, context, fn.__name__)
            raise  # unreachable: abort raises

    return wrapper


def _stream(
    fn: Callable[[Any, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]]:
    @functools.wraps(fn)
    async def wrapper(
        self: Any, request: Req, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Resp]:
        try:
            async for item in fn(self, request, context):
                yield item
        except Exception as exc:
            await _abort(exc, context, fn.__name__)

    return wrapper


async def _abort(exc: Exception, context: grpc.aio.ServicerContext, rpc: str) -> None:
    if isinstance(exc, grpc.aio.AbortError):
        raise exc
    status = _status_of(exc)
    if status is None:
        log.exception("%s failed", rpc)
        status = (grpc.StatusCode.INTERNAL, f"internal error in {rpc}: {type(exc).__name__}")
    elif status[0] == grpc.StatusCode.UNAVAILABLE:
        log.warning("%s: database unavailable: %s", rpc, exc)
    await context.abort(*status)


def _timeout(context: grpc.aio.ServicerContext, cap: float = 10.0) -> float:
    remaining = context.time_remaining()
    return cap if remaining is None else max(0.001, min(cap, remaining))


async def _unknown_series(store: Store, series: Series, symbol: str) -> ServiceError:
    """Why a series has no rows: an unknown symbol, or a symbol without this interval."""
    check = await store.check_series(series.market, symbol)
    if not check.symbol_known:
        return invalid("symbol", f"no candles of {symbol!r} in market {series.market}")
    return invalid(
        "interval",
        f"{symbol} has no {series.interval} candles in {series.market}; "
        f"intervals available: {', '.join(check.intervals)}",
    )


# --- candles -------------------------------------------------------------------------


class CandleServicer(candle_service_pb2_grpc.CandleServiceServicer):
    def __init__(self, store: Store, listener: NotifyListener) -> None:
        self.store = store
        self.listener = listener

    def _range(self, request: Any) -> CandleRange:
        series = parse_series(request.market, request.interval)
        symbol = parse_symbol(request.symbol)
        start, end = parse_range(
            has_start=request.HasField("start_time"),
            start=request.start_time,
            has_end=request.HasField("end_time"),
            end=request.end_time,
            day=request.date,
        )
        return CandleRange(series, symbol, start, end)

    @_unary
    async def GetCandles(
        self, request: candle_service_pb2.GetCandlesRequest, context: grpc.aio.ServicerContext
    ) -> candle_service_pb2.GetCandlesResponse:
        r = self._range(request)
        check_unary_size(r)
        rows = await self.store.candles(
            r.series, [r.symbol], r.start, r.end, limit=MAX_PAGE + 1, timeout=_timeout(context)
        )
        if not rows:
            check = await self.store.check_series(r.series.market, r.symbol)
            if not check.symbol_known or r.series.interval not in check.intervals:
                raise await _unknown_series(self.store, r.series, r.symbol)
        m, iv = r.series.market_proto, r.series.interval
        return candle_service_pb2.GetCandlesResponse(
            candles=[candle_from_row(row, m, iv) for row in rows[:MAX_PAGE]]
        )

    @_stream
    async def StreamCandleHistory(
        self,
        request: candle_service_pb2.StreamCandleHistoryRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[candle_service_pb2.StreamCandleHistoryResponse]:
        r = self._range(request)
        page = parse_page_size(request.page_size)
        m, iv = r.series.market_proto, r.series.interval
        sent = False
        async for rows in self.store.candle_batches(
            r.series, [r.symbol], r.start, r.end, batch=page
        ):
            sent = True
            yield candle_service_pb2.StreamCandleHistoryResponse(
                candles=[candle_from_row(row, m, iv) for row in rows]
            )
        if not sent:
            check = await self.store.check_series(r.series.market, r.symbol)
            if not check.symbol_known or r.series.interval not in check.intervals:
                raise await _unknown_series(self.store, r.series, r.symbol)

    @_stream
    async def StreamCandles(
        self, request: candle_service_pb2.StreamCandlesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[candle_service_pb2.StreamCandlesResponse]:
        series = parse_series(request.market, request.interval)
        symbols = parse_symbols(request.symbols, required=True)
        # Subscribe first, then read: a candle landing in between is read, not missed.
        sub = self.listener.subscribe(series.market, series.interval, frozenset(symbols))
        try:
            last_sent = await self.store.last_open_times(series, symbols)
            for symbol in symbols:
                if symbol not in last_sent:
                    check = await self.store.check_series(series.market, symbol)
                    if not check.symbol_known:
                        raise invalid(
                            "symbols", f"no candles of {symbol!r} in market {series.market}"
                        )
            m, iv = series.market_proto, series.interval
            if request.HasField("replay_start_time"):
                replay_from = parse_time(request.replay_start_time, "replay_start_time")
                async for rows in self.store.candle_batches(
                    series, symbols, replay_from, None, batch=STREAM_BATCH
                ):
                    yield candle_service_pb2.StreamCandlesResponse(
                        candles=[candle_from_row(row, m, iv) for row in rows]
                    )
                    for row in rows:
                        last_sent[row[0]] = max(last_sent.get(row[0], 0), row[1])
            for symbol in symbols:
                last_sent.setdefault(symbol, 0)
            while True:
                await sub.wait()
                while True:
                    rows = await self.store.candles_after(series, last_sent, limit=STREAM_BATCH)
                    if not rows:
                        break
                    for row in rows:
                        last_sent[row[0]] = max(last_sent[row[0]], row[1])
                    yield candle_service_pb2.StreamCandlesResponse(
                        candles=[candle_from_row(row, m, iv) for row in rows]
                    )
                    if len(rows) < STREAM_BATCH:
                        break
        finally:
            self.listener.unsubscribe(sub)


# --- predictions ---------------------------------------------------------------------


def advise(p_up: float, model: ChampionModel) -> int:
    if p_up >= model.buy_threshold:
        return prediction_service_pb2.ADVICE_BUY
    if p_up <= model.sell_threshold:
        return prediction_service_pb2.ADVICE_SELL
    return prediction_service_pb2.ADVICE_HOLD


class Predictor:
    """The champion's predictions for feature rows, with advice, age and staleness.

    A prediction is a pure function of the model and the feature row, so the
    champion's outputs are memoised by (model version, feature row): a bar's
    features are predicted once, however many clients ask until the next bar.
    """

    def __init__(self, max_entries: int = 8192) -> None:
        self._max = max_entries
        self._version: str | None = None
        self._cache: dict[tuple[Any, ...], tuple[float, float]] = {}

    def _outputs(
        self, model: ChampionModel, rows: Sequence[tuple[Any, ...]]
    ) -> list[tuple[float, float]]:
        if model.version != self._version:
            self._cache.clear()
            self._version = model.version
        keys = [tuple(row) for row in rows]
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
                    advice=advise(p_up, model),  # type: ignore[arg-type]
                    model_version=model.version,
                    feature_open_time=timestamp_from_us(open_us),
                    feature_age=duration_from_timedelta(age),
                    stale=age > 2 * step,
                    buy_threshold=model.buy_threshold,
                    sell_threshold=model.sell_threshold,
                )
            )
        return result


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, store: Store, champion: ChampionHolder, listener: NotifyListener) -> None:
        self.store = store
        self.champion = champion
        self.listener = listener
        self.predictions = Predictor()

    def _model(self) -> ChampionModel:
        model = self.champion.model
        if model is None:
            detail = (
                f" (the last load failed: {self.champion.error})" if self.champion.error else ""
            )
            raise precondition(
                "no champion model: train and promote one (`klinehouse train`, "
                f"`klinehouse models promote`){detail}"
            )
        return model

    async def _predict(
        self, series: Series, symbols: Sequence[str] | None, timeout: float | None = None
    ) -> tuple[ChampionModel, list[prediction_service_pb2.Prediction]]:
        model = self._model()
        features = await self.store.latest_features(series, symbols, timeout=timeout)
        return model, self.predictions(model, features, series)

    @_unary
    async def GetPrediction(
        self,
        request: prediction_service_pb2.GetPredictionRequest,
        context: grpc.aio.ServicerContext,
    ) -> prediction_service_pb2.GetPredictionResponse:
        series = parse_series(request.market, request.interval)
        symbol = parse_symbol(request.symbol)
        _, preds = await self._predict(series, [symbol], _timeout(context))
        if not preds:
            raise await self._no_features(series, symbol)
        return prediction_service_pb2.GetPredictionResponse(prediction=preds[0])

    async def _no_features(self, series: Series, symbol: str) -> ServiceError:
        check = await self.store.check_series(series.market, symbol)
        if check.symbol_known and series.interval in check.intervals:
            return precondition(
                f"{symbol} {series.interval} has candles but no features yet "
                "(too little history, or the marts are not built)"
            )
        return await _unknown_series(self.store, series, symbol)

    @_stream
    async def StreamPredictions(
        self,
        request: prediction_service_pb2.StreamPredictionsRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[prediction_service_pb2.StreamPredictionsResponse]:
        series = parse_series(request.market, request.interval)
        symbols = parse_symbols(request.symbols, required=True)
        self._model()
        sub = self.listener.subscribe(series.market, series.interval, frozenset(symbols))
        try:
            _, preds = await self._predict(series, symbols)
            sent = {p.symbol: p.feature_open_time.ToMicroseconds() for p in preds}
            for symbol in symbols:
                if symbol not in sent:
                    raise await self._no_features(series, symbol)
            for p in preds:
                yield prediction_service_pb2.StreamPredictionsResponse(prediction=p)
            while True:
                dirty = await sub.wait()
                _, preds = await self._predict(series, sorted(dirty or symbols))
                for p in preds:
                    key = p.feature_open_time.ToMicroseconds()
                    if key > sent.get(p.symbol, -1):  # a new bar closed: a new prediction
                        sent[p.symbol] = key
                        yield prediction_service_pb2.StreamPredictionsResponse(prediction=p)
        finally:
            self.listener.unsubscribe(sub)

    @_unary
    async def GetAdvice(
        self, request: prediction_service_pb2.GetAdviceRequest, context: grpc.aio.ServicerContext
    ) -> prediction_service_pb2.GetAdviceResponse:
        series = parse_series(request.market, request.interval)
        symbols = parse_symbols(request.symbols, required=False) or None
        model, preds = await self._predict(series, symbols, _timeout(context))
        if symbols is not None:
            missing = sorted(set(symbols) - {p.symbol for p in preds})
            if missing:
                raise await self._no_features(series, missing[0])
        elif not preds:
            raise precondition(f"no features in {series.market} {series.interval}: nothing to rank")
        ranked = sorted(preds, key=lambda p: p.expected_log_return, reverse=True)
        response = prediction_service_pb2.GetAdviceResponse(
            ranked=ranked, model_version=model.version
        )
        buys = [p for p in ranked if p.advice == prediction_service_pb2.ADVICE_BUY]
        sells = [p for p in ranked if p.advice == prediction_service_pb2.ADVICE_SELL]
        if buys:
            response.best_buy.CopyFrom(buys[0])
        if sells:
            response.worst_sell.CopyFrom(sells[-1])
        return response
