"""Thin servicers of klinehouse.v1 (in the style of grpc's examples): each RPC parses
its request into typed values, calls the store, the predictor and the advice of this
package, and builds the proto answer. Failures become statuses in `inference.status`;
the predictions and their cache live in `inference.predictor`, the reads shared by
GetPrediction calls in flight in `inference.coalesce`, the advice rule in
`inference.advice`, the reasons for an empty answer in `inference.missing`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import psycopg

from inference import missing
from inference.advice import ranked_advice
from inference.champion import ChampionHolder, ChampionModel
from inference.coalesce import FeatureReads
from inference.convert import candle_from_row
from inference.errors import precondition
from inference.listener import NotifyListener
from inference.predictor import Predictor
from inference.requests import (
    MAX_PAGE,
    CandleRange,
    Series,
    check_unary_size,
    parse_page_size,
    parse_range,
    parse_series,
    parse_symbol,
    parse_symbols,
    parse_time,
)
from inference.status import deadline, stream, unary
from inference.store import PoolExhausted, Store
from inference.stream_reads import BUSY_RETRY_SECONDS, StreamReads
from klinehouse.v1 import (
    candle_service_pb2,
    candle_service_pb2_grpc,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
)

STREAM_BATCH = 1000  # candles per StreamCandles message while replaying
STREAM_RETRY_SECONDS = 1.0  # a live stream's next read after the database failed it

log = logging.getLogger(__name__)


# --- candles -------------------------------------------------------------------------


class CandleServicer(candle_service_pb2_grpc.CandleServiceServicer):
    def __init__(self, store: Store, listener: NotifyListener, reads: StreamReads) -> None:
        self.store = store
        self.listener = listener
        self.reads = reads  # the streams' reads go through its gate

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

    @unary
    async def GetCandles(
        self, request: candle_service_pb2.GetCandlesRequest, context: grpc.aio.ServicerContext
    ) -> candle_service_pb2.GetCandlesResponse:
        r = self._range(request)
        check_unary_size(r)
        rows = await self.store.candles(
            r.series, [r.symbol], r.start, r.end, limit=MAX_PAGE + 1, timeout=deadline(context)
        )
        if not rows and (
            error := await missing.no_candles(self.store, r.series, r.symbol, r.start)
        ):
            raise error
        m, iv = r.series.market_proto, r.series.interval
        return candle_service_pb2.GetCandlesResponse(
            candles=[candle_from_row(row, m, iv) for row in rows[:MAX_PAGE]]
        )

    @stream
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
        if not sent and (
            error := await missing.no_candles(self.store, r.series, r.symbol, r.start)
        ):
            raise error

    @stream
    async def StreamCandles(
        self, request: candle_service_pb2.StreamCandlesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[candle_service_pb2.StreamCandlesResponse]:
        series = parse_series(request.market, request.interval)
        symbols = parse_symbols(request.symbols, required=True)
        # Subscribe first, then read: a candle landing in between is read, not missed.
        sub = self.listener.subscribe(series.market, series.interval, frozenset(symbols))
        try:
            last_sent = await self.reads.read(
                functools.partial(self.store.last_open_times, series, symbols)
            )
            for symbol in symbols:
                if symbol not in last_sent and (
                    error := await self.reads.read(
                        functools.partial(
                            missing.unknown_symbol, self.store, series.market, symbol, "symbols"
                        )
                    )
                ):
                    raise error
            m, iv = series.market_proto, series.interval
            if request.HasField("replay_start_time"):
                replay_from = parse_time(request.replay_start_time, "replay_start_time")
                replaying = True
                while replaying:
                    sent = False
                    try:  # one cursor for the whole replay: not through the gate
                        async for rows in self.store.candle_batches(
                            series, symbols, replay_from, None, batch=STREAM_BATCH
                        ):
                            sent = True
                            yield candle_service_pb2.StreamCandlesResponse(
                                candles=[candle_from_row(row, m, iv) for row in rows]
                            )
                            for row in rows:
                                last_sent[row[0]] = max(last_sent.get(row[0], 0), row[1])
                        replaying = False
                    except PoolExhausted:
                        if sent:  # the cursor's connection was had: not the pool's queue
                            raise
                        await asyncio.sleep(BUSY_RETRY_SECONDS)  # wait, never end the stream
            for symbol in symbols:
                last_sent.setdefault(symbol, 0)
            while True:
                await sub.wait()
                while True:
                    try:
                        rows = await self.reads.read(
                            functools.partial(
                                self.store.candles_after, series, last_sent, limit=STREAM_BATCH
                            )
                        )
                    except (psycopg.OperationalError, OSError) as exc:
                        # The database went away (a restart): the stream stays open and
                        # reads on from what it sent once the database answers again.
                        log.warning("StreamCandles: database unavailable (%s); retrying", exc)
                        sub.mark(None)
                        await asyncio.sleep(STREAM_RETRY_SECONDS)
                        break
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


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(
        self, store: Store, champion: ChampionHolder, listener: NotifyListener, reads: StreamReads
    ) -> None:
        self.store = store
        self.champion = champion
        self.listener = listener
        self.reads = reads  # the streams' reads go through its gate
        self.predictions = Predictor()
        self.feature_reads = FeatureReads(store)  # GetPrediction calls in flight share one

    def _model(self, series: Series) -> ChampionModel:
        """The champion of the request's (market, interval)."""
        model = self.champion.get(series.market, series.interval)
        if model is None:
            error = self.champion.error(series.market, series.interval)
            detail = f" (the last load failed: {error})" if error else ""
            raise precondition(
                f"no champion model for {series.market} {series.interval}: train and promote one"
                f" (`klinehouse train --market {series.market} --interval {series.interval}`,"
                f" `klinehouse models promote`){detail}"
            )
        return model

    async def _predict(
        self, series: Series, symbols: Sequence[str] | None, timeout: float | None = None
    ) -> tuple[ChampionModel, list[prediction_service_pb2.Prediction]]:
        model = self._model(series)
        features = await self.store.latest_features(series, symbols, timeout=timeout)
        return model, self.predictions(model, features, series)

    @unary
    async def GetPrediction(
        self,
        request: prediction_service_pb2.GetPredictionRequest,
        context: grpc.aio.ServicerContext,
    ) -> prediction_service_pb2.GetPredictionResponse:
        series = parse_series(request.market, request.interval)
        symbol = parse_symbol(request.symbol)
        model = self._model(series)
        row = await self.feature_reads.latest(series, symbol, deadline(context))
        if row is None:
            raise await missing.no_features(self.store, series, symbol)
        (prediction,) = self.predictions(model, [row], series)
        return prediction_service_pb2.GetPredictionResponse(prediction=prediction)

    @stream
    async def StreamPredictions(
        self,
        request: prediction_service_pb2.StreamPredictionsRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[prediction_service_pb2.StreamPredictionsResponse]:
        series = parse_series(request.market, request.interval)
        symbols = parse_symbols(request.symbols, required=True)
        self._model(series)
        sub = self.listener.subscribe(series.market, series.interval, frozenset(symbols))
        try:
            _, preds = await self.reads.read(functools.partial(self._predict, series, symbols))
            sent = {p.symbol: p.feature_open_time.ToMicroseconds() for p in preds}
            for symbol in symbols:
                if symbol not in sent:
                    raise await self.reads.read(
                        functools.partial(missing.no_features, self.store, series, symbol)
                    )
            for p in preds:
                yield prediction_service_pb2.StreamPredictionsResponse(prediction=p)
            while True:
                dirty = await sub.wait()
                try:
                    _, preds = await self.reads.read(
                        functools.partial(self._predict, series, sorted(dirty or symbols))
                    )
                except (psycopg.OperationalError, OSError) as exc:
                    # as StreamCandles: the stream outlives a database restart
                    log.warning("StreamPredictions: database unavailable (%s); retrying", exc)
                    sub.mark(None)
                    await asyncio.sleep(STREAM_RETRY_SECONDS)
                    continue
                for p in preds:
                    key = p.feature_open_time.ToMicroseconds()
                    if key > sent.get(p.symbol, -1):  # a new bar closed: a new prediction
                        sent[p.symbol] = key
                        yield prediction_service_pb2.StreamPredictionsResponse(prediction=p)
        finally:
            self.listener.unsubscribe(sub)

    @unary
    async def GetAdvice(
        self, request: prediction_service_pb2.GetAdviceRequest, context: grpc.aio.ServicerContext
    ) -> prediction_service_pb2.GetAdviceResponse:
        series = parse_series(request.market, request.interval)
        symbols = parse_symbols(request.symbols, required=False) or None
        model, preds = await self._predict(series, symbols, deadline(context))
        if symbols is not None:
            absent = sorted(set(symbols) - {p.symbol for p in preds})
            if absent:
                raise await missing.no_features(self.store, series, absent[0])
        elif not preds:
            raise precondition(f"no features in {series.market} {series.interval}: nothing to rank")
        return ranked_advice(preds, model.version)
