import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from klinehouse.v1 import candle_pb2 as _candle_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Advice(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ADVICE_UNSPECIFIED: _ClassVar[Advice]
    ADVICE_BUY: _ClassVar[Advice]
    ADVICE_SELL: _ClassVar[Advice]
    ADVICE_HOLD: _ClassVar[Advice]
ADVICE_UNSPECIFIED: Advice
ADVICE_BUY: Advice
ADVICE_SELL: Advice
ADVICE_HOLD: Advice

class Prediction(_message.Message):
    __slots__ = ("market", "symbol", "interval", "p_up", "expected_log_return", "advice", "model_version", "feature_open_time", "feature_age", "stale", "buy_threshold", "sell_threshold", "candidate", "horizon_bars", "target")
    MARKET_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    P_UP_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_LOG_RETURN_FIELD_NUMBER: _ClassVar[int]
    ADVICE_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEATURE_OPEN_TIME_FIELD_NUMBER: _ClassVar[int]
    FEATURE_AGE_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    BUY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SELL_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    HORIZON_BARS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    market: _candle_pb2.Market
    symbol: str
    interval: str
    p_up: float
    expected_log_return: float
    advice: Advice
    model_version: str
    feature_open_time: _timestamp_pb2.Timestamp
    feature_age: _duration_pb2.Duration
    stale: bool
    buy_threshold: float
    sell_threshold: float
    candidate: str
    horizon_bars: int
    target: str
    def __init__(self, market: _Optional[_Union[_candle_pb2.Market, str]] = ..., symbol: _Optional[str] = ..., interval: _Optional[str] = ..., p_up: _Optional[float] = ..., expected_log_return: _Optional[float] = ..., advice: _Optional[_Union[Advice, str]] = ..., model_version: _Optional[str] = ..., feature_open_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., feature_age: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., stale: _Optional[bool] = ..., buy_threshold: _Optional[float] = ..., sell_threshold: _Optional[float] = ..., candidate: _Optional[str] = ..., horizon_bars: _Optional[int] = ..., target: _Optional[str] = ...) -> None: ...

class GetPredictionRequest(_message.Message):
    __slots__ = ("market", "symbol", "interval")
    MARKET_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    market: _candle_pb2.Market
    symbol: str
    interval: str
    def __init__(self, market: _Optional[_Union[_candle_pb2.Market, str]] = ..., symbol: _Optional[str] = ..., interval: _Optional[str] = ...) -> None: ...

class GetPredictionResponse(_message.Message):
    __slots__ = ("prediction",)
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    prediction: Prediction
    def __init__(self, prediction: _Optional[_Union[Prediction, _Mapping]] = ...) -> None: ...

class StreamPredictionsRequest(_message.Message):
    __slots__ = ("market", "symbols", "interval")
    MARKET_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    market: _candle_pb2.Market
    symbols: _containers.RepeatedScalarFieldContainer[str]
    interval: str
    def __init__(self, market: _Optional[_Union[_candle_pb2.Market, str]] = ..., symbols: _Optional[_Iterable[str]] = ..., interval: _Optional[str] = ...) -> None: ...

class StreamPredictionsResponse(_message.Message):
    __slots__ = ("prediction",)
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    prediction: Prediction
    def __init__(self, prediction: _Optional[_Union[Prediction, _Mapping]] = ...) -> None: ...

class GetAdviceRequest(_message.Message):
    __slots__ = ("market", "symbols", "interval")
    MARKET_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    market: _candle_pb2.Market
    symbols: _containers.RepeatedScalarFieldContainer[str]
    interval: str
    def __init__(self, market: _Optional[_Union[_candle_pb2.Market, str]] = ..., symbols: _Optional[_Iterable[str]] = ..., interval: _Optional[str] = ...) -> None: ...

class GetAdviceResponse(_message.Message):
    __slots__ = ("ranked", "best_buy", "worst_sell", "model_version")
    RANKED_FIELD_NUMBER: _ClassVar[int]
    BEST_BUY_FIELD_NUMBER: _ClassVar[int]
    WORST_SELL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ranked: _containers.RepeatedCompositeFieldContainer[Prediction]
    best_buy: Prediction
    worst_sell: Prediction
    model_version: str
    def __init__(self, ranked: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ..., best_buy: _Optional[_Union[Prediction, _Mapping]] = ..., worst_sell: _Optional[_Union[Prediction, _Mapping]] = ..., model_version: _Optional[str] = ...) -> None: ...
