"""Bad request values over a real port: times outside the served range are OUT_OF_RANGE or
INVALID_ARGUMENT (never INTERNAL/UNAVAILABLE, which clients retry), and an error quotes at
most 64 characters of what it was sent."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from inference.requests import MAX_QUOTED
from klinehouse.v1 import (
    candle_service_pb2,
    candle_service_pb2_grpc,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
)

from .conftest import FIRST_OPEN
from .test_candles import ts

HUGE = "q" * 16384
GOOD_START = ts(FIRST_OPEN)


def _stamp(seconds: int, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


def _error(call: Callable[[], object]) -> grpc.RpcError:
    """The error of a unary call, or of a streaming call read to its end."""
    with pytest.raises(grpc.RpcError) as info:
        result = call()
        if isinstance(result, grpc.Call):
            list(result)  # type: ignore[call-overload]
    return info.value


OUT, INVALID = grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.INVALID_ARGUMENT
# (request fields, expected code, the field the message must start with)
BAD_TIMES = [
    pytest.param({"start_time": _stamp(2**40)}, OUT, "start_time", id="start-2^40"),
    pytest.param({"start_time": _stamp(-(2**63))}, OUT, "start_time", id="start--2^63"),
    pytest.param(
        {"start_time": GOOD_START, "end_time": _stamp(2**63 - 1)}, OUT, "end_time", id="end-2^63"
    ),
    pytest.param(
        {"start_time": _stamp(GOOD_START.seconds, -1)}, INVALID, "start_time", id="negative-nanos"
    ),
    pytest.param({"date": "9999-12-31"}, OUT, "date", id="date-9999-12-31"),
    pytest.param({"date": "0001-01-01"}, OUT, "date", id="date-0001-01-01"),
]


@pytest.mark.parametrize(("fields", "code", "field"), BAD_TIMES)
def test_bad_times_of_get_candles_are_the_callers_fault(
    channel: grpc.Channel, fields: dict[str, object], code: grpc.StatusCode, field: str
) -> None:
    stub = candle_service_pb2_grpc.CandleServiceStub(channel)
    request = candle_service_pb2.GetCandlesRequest(symbol="BTCUSDT", interval="1h", **fields)
    err = _error(lambda: stub.GetCandles(request, timeout=10))
    assert err.code() == code, err.details()
    assert err.details().startswith(f"{field}:"), err.details()


@pytest.mark.parametrize(("fields", "code", "field"), BAD_TIMES)
def test_bad_times_of_the_history_stream_are_the_callers_fault(
    channel: grpc.Channel, fields: dict[str, object], code: grpc.StatusCode, field: str
) -> None:
    stub = candle_service_pb2_grpc.CandleServiceStub(channel)
    request = candle_service_pb2.StreamCandleHistoryRequest(
        symbol="BTCUSDT", interval="1h", **fields
    )
    err = _error(lambda: stub.StreamCandleHistory(request, timeout=10))
    assert err.code() == code, err.details()
    assert err.details().startswith(f"{field}:"), err.details()


@pytest.mark.parametrize("seconds", [2**40, -(2**63)])
def test_a_bad_replay_start_is_out_of_range(channel: grpc.Channel, seconds: int) -> None:
    stub = candle_service_pb2_grpc.CandleServiceStub(channel)
    request = candle_service_pb2.StreamCandlesRequest(
        symbols=["BTCUSDT"], interval="1h", replay_start_time=_stamp(seconds)
    )
    err = _error(lambda: stub.StreamCandles(request, timeout=10))
    assert err.code() == grpc.StatusCode.OUT_OF_RANGE, err.details()
    assert err.details().startswith("replay_start_time:")


def _assert_quotes_little(err: grpc.RpcError, field: str) -> None:
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details()[:200])
    details = err.details()
    assert details.startswith(f"{field}:")
    assert "q" * MAX_QUOTED in details  # it does say what it was sent ...
    assert "q" * (MAX_QUOTED + 1) not in details  # ... but no more than 64 characters of it
    assert len(details) < 400


def test_a_16kb_symbol_is_not_echoed(channel: grpc.Channel) -> None:
    candles = candle_service_pb2_grpc.CandleServiceStub(channel)
    predictions = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    calls: list[tuple[str, Callable[[], object]]] = [
        (
            "symbol",
            lambda: candles.GetCandles(
                candle_service_pb2.GetCandlesRequest(symbol=HUGE, interval="1h", date="2024-03-01"),
                timeout=10,
            ),
        ),
        (
            "symbol",
            lambda: predictions.GetPrediction(
                prediction_service_pb2.GetPredictionRequest(symbol=HUGE, interval="1h"),
                timeout=10,
            ),
        ),
        (
            "symbols",
            lambda: candles.StreamCandles(
                candle_service_pb2.StreamCandlesRequest(symbols=[HUGE], interval="1h"),
                timeout=10,
            ),
        ),
        (
            "symbols",
            lambda: predictions.GetAdvice(
                prediction_service_pb2.GetAdviceRequest(symbols=["BTCUSDT", HUGE], interval="1h"),
                timeout=10,
            ),
        ),
    ]
    for field, call in calls:
        _assert_quotes_little(_error(call), field)


def test_a_16kb_interval_or_date_is_not_echoed(channel: grpc.Channel) -> None:
    stub = candle_service_pb2_grpc.CandleServiceStub(channel)
    err = _error(
        lambda: stub.GetCandles(
            candle_service_pb2.GetCandlesRequest(
                symbol="BTCUSDT", interval=HUGE, date="2024-03-01"
            ),
            timeout=10,
        )
    )
    _assert_quotes_little(err, "interval")
    err = _error(
        lambda: stub.GetCandles(
            candle_service_pb2.GetCandlesRequest(symbol="BTCUSDT", interval="1h", date=HUGE),
            timeout=10,
        )
    )
    _assert_quotes_little(err, "date")


def test_too_many_symbols_are_refused_before_each_is_read(channel: grpc.Channel) -> None:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    err = _error(
        lambda: stub.GetAdvice(
            prediction_service_pb2.GetAdviceRequest(symbols=["q" * 1000] * 300, interval="1h"),
            timeout=10,
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("symbols: 300 symbols; at most")
