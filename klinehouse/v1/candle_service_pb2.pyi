import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from klinehouse.v1 import candle_pb2 as _candle_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetCandlesRequest(_message.Message):
    __slots__ = ("market", "symbol", "interval", "start_time", "end_time", "date")
    MARKET_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    market: _candle_pb2.Market
    symbol: str
    interval: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    date: str
    def __init__(self, market: _Optional[_Union[_candle_pb2.Market, str]] = ..., symbol: _Optional[str] = ..., interval: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., date: _Optional[str] = ...) -> None: ...

class GetCandlesResponse(_message.Message):
    __slots__ = ("candles",)
    CANDLES_FIELD_NUMBER: _ClassVar[int]
    candles: _containers.RepeatedCompositeFieldContainer[_candle_pb2.Candle]
    def __init__(self, candles: _Optional[_Iterable[_Union[_candle_pb2.Candle, _Mapping]]] = ...) -> None: ...

class StreamCandleHistoryRequest(_message.Message):
    __slots__ = ("market", "symbol", "interval", "start_time", "end_time", "date", "page_size")
    MARKET_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    market: _candle_pb2.Market
    symbol: str
    interval: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    date: str
    page_size: int
    def __init__(self, market: _Optional[_Union[_candle_pb2.Market, str]] = ..., symbol: _Optional[str] = ..., interval: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., date: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class StreamCandleHistoryResponse(_message.Message):
    __slots__ = ("candles",)
    CANDLES_FIELD_NUMBER: _ClassVar[int]
    candles: _containers.RepeatedCompositeFieldContainer[_candle_pb2.Candle]
    def __init__(self, candles: _Optional[_Iterable[_Union[_candle_pb2.Candle, _Mapping]]] = ...) -> None: ...

class StreamCandlesRequest(_message.Message):
    __slots__ = ("market", "symbols", "interval", "replay_start_time")
    MARKET_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    REPLAY_START_TIME_FIELD_NUMBER: _ClassVar[int]
    market: _candle_pb2.Market
    symbols: _containers.RepeatedScalarFieldContainer[str]
    interval: str
    replay_start_time: _timestamp_pb2.Timestamp
    def __init__(self, market: _Optional[_Union[_candle_pb2.Market, str]] = ..., symbols: _Optional[_Iterable[str]] = ..., interval: _Optional[str] = ..., replay_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StreamCandlesResponse(_message.Message):
    __slots__ = ("candles",)
    CANDLES_FIELD_NUMBER: _ClassVar[int]
    candles: _containers.RepeatedCompositeFieldContainer[_candle_pb2.Candle]
    def __init__(self, candles: _Optional[_Iterable[_Union[_candle_pb2.Candle, _Mapping]]] = ...) -> None: ...
