"""A small client of klinehouse.v1 on the generated stubs (used by the CLI and the demo)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from inference.convert import MARKET_TO_PROTO
from klinehouse.errors import KlinehouseError
from klinehouse.settings import Settings, get_settings
from klinehouse.v1 import (
    candle_pb2,
    candle_service_pb2,
    candle_service_pb2_grpc,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
)

ADVICE_NAMES = {
    prediction_service_pb2.ADVICE_BUY: "BUY",
    prediction_service_pb2.ADVICE_SELL: "SELL",
    prediction_service_pb2.ADVICE_HOLD: "HOLD",
    prediction_service_pb2.ADVICE_UNSPECIFIED: "?",
}


def _timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


class Client:
    """Channel, bearer token and the two stubs; RPC failures become one-line KlinehouseErrors."""

    def __init__(self, address: str | None = None, settings: Settings | None = None) -> None:
        s = settings or get_settings()
        target = address or s.grpc_address
        host, _, port = target.rpartition(":")
        if host in {"0.0.0.0", "[::]", ""}:
            target = f"127.0.0.1:{port}"
        self.target = target
        if s.grpc_tls_cert:
            creds = grpc.ssl_channel_credentials(Path(s.grpc_tls_cert).read_bytes())
            self.channel = grpc.secure_channel(target, creds)
        else:
            self.channel = grpc.insecure_channel(target)
        token = s.grpc_token.get_secret_value() if s.grpc_token else None
        self.metadata = [("authorization", f"Bearer {token}")] if token else None
        self.candles = candle_service_pb2_grpc.CandleServiceStub(self.channel)
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fail(self, exc: grpc.RpcError) -> KlinehouseError:
        code = exc.code()
        if code == grpc.StatusCode.UNAVAILABLE and "database" not in (exc.details() or ""):
            return KlinehouseError(
                f"no klinehouse gRPC service at {self.target} (start it with `klinehouse serve`): "
                f"{exc.details()}"
            )
        return KlinehouseError(f"{code.name}: {exc.details()}")

    def get_candles(
        self,
        symbol: str,
        interval: str,
        *,
        market: str = "spot",
        day: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        timeout: float = 30.0,
    ) -> Iterator[candle_pb2.Candle]:
        """The candles of a date or range; ranges beyond one unary page are streamed in pages."""
        fields: dict[str, object] = {
            "market": MARKET_TO_PROTO[market],
            "symbol": symbol,
            "interval": interval,
        }
        if day:
            fields["date"] = day
        if start:
            fields["start_time"] = _timestamp(start)
        if end:
            fields["end_time"] = _timestamp(end)
        try:
            try:
                response = self.candles.GetCandles(
                    candle_service_pb2.GetCandlesRequest(**fields),  # type: ignore[arg-type]
                    timeout=timeout,
                    metadata=self.metadata,
                )
                yield from response.candles
                return
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.OUT_OF_RANGE or "page_size" in exc.details():
                    raise
            for page in self.candles.StreamCandleHistory(
                candle_service_pb2.StreamCandleHistoryRequest(page_size=5000, **fields),  # type: ignore[arg-type]
                metadata=self.metadata,
            ):
                yield from page.candles
        except grpc.RpcError as exc:
            raise self._fail(exc) from None

    def predict(
        self, symbol: str, interval: str, *, market: str = "spot", timeout: float = 10.0
    ) -> prediction_service_pb2.Prediction:
        try:
            return self.predictions.GetPrediction(
                prediction_service_pb2.GetPredictionRequest(
                    market=MARKET_TO_PROTO[market],  # type: ignore[arg-type]
                    symbol=symbol,
                    interval=interval,
                ),
                timeout=timeout,
                metadata=self.metadata,
            ).prediction
        except grpc.RpcError as exc:
            raise self._fail(exc) from None

    def advise(
        self, symbols: list[str], interval: str, *, market: str = "spot", timeout: float = 10.0
    ) -> prediction_service_pb2.GetAdviceResponse:
        try:
            return self.predictions.GetAdvice(  # type: ignore[no-any-return]
                prediction_service_pb2.GetAdviceRequest(
                    market=MARKET_TO_PROTO[market],  # type: ignore[arg-type]
                    symbols=symbols,
                    interval=interval,
                ),
                timeout=timeout,
                metadata=self.metadata,
            )
        except grpc.RpcError as exc:
            raise self._fail(exc) from None

    def watch_candles(
        self,
        symbols: list[str],
        interval: str,
        *,
        market: str = "spot",
        replay_from: datetime | None = None,
    ) -> Iterator[candle_pb2.Candle]:
        request = candle_service_pb2.StreamCandlesRequest(
            market=MARKET_TO_PROTO[market],  # type: ignore[arg-type]
            symbols=symbols,
            interval=interval,
        )
        if replay_from:
            request.replay_start_time.CopyFrom(_timestamp(replay_from))
        try:
            for message in self.candles.StreamCandles(request, metadata=self.metadata):
                yield from message.candles
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                raise self._fail(exc) from None

    def watch_predictions(
        self, symbols: list[str], interval: str, *, market: str = "spot"
    ) -> Iterator[prediction_service_pb2.Prediction]:
        request = prediction_service_pb2.StreamPredictionsRequest(
            market=MARKET_TO_PROTO[market],  # type: ignore[arg-type]
            symbols=symbols,
            interval=interval,
        )
        try:
            for message in self.predictions.StreamPredictions(request, metadata=self.metadata):
                yield message.prediction
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                raise self._fail(exc) from None


def format_prediction(p: prediction_service_pb2.Prediction) -> str:
    opened = p.feature_open_time.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M")
    age = p.feature_age.ToTimedelta()
    stale = "  STALE" if p.stale else ""
    return (
        f"{p.symbol:<12} {p.interval:<4} {ADVICE_NAMES[p.advice]:<4}  P(up)={p.p_up:.4f}  "
        f"E[log r]={p.expected_log_return:+.6f}  bar {opened} UTC (age {age}){stale}  "
        f"model {p.model_version} (buy>={p.buy_threshold:.3f}, sell<={p.sell_threshold:.3f};"
        f" {p.candidate}: {p.target} over {p.horizon_bars} bar(s))"
    )


def format_candle(c: candle_pb2.Candle) -> str:
    opened = c.open_time.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{c.symbol:<12} {opened}  O {c.open}  H {c.high}  L {c.low}  C {c.close}  V {c.volume}"
