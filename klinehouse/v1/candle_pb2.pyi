import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Market(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MARKET_UNSPECIFIED: _ClassVar[Market]
    MARKET_SPOT: _ClassVar[Market]
    MARKET_USDM: _ClassVar[Market]
    MARKET_COINM: _ClassVar[Market]
MARKET_UNSPECIFIED: Market
MARKET_SPOT: Market
MARKET_USDM: Market
MARKET_COINM: Market

class Candle(_message.Message):
    __slots__ = ("market", "symbol", "interval", "open_time", "close_time", "open", "high", "low", "close", "volume", "quote_volume", "trades", "taker_buy_base_volume", "taker_buy_quote_volume")
    MARKET_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    OPEN_TIME_FIELD_NUMBER: _ClassVar[int]
    CLOSE_TIME_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    QUOTE_VOLUME_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    TAKER_BUY_BASE_VOLUME_FIELD_NUMBER: _ClassVar[int]
    TAKER_BUY_QUOTE_VOLUME_FIELD_NUMBER: _ClassVar[int]
    market: Market
    symbol: str
    interval: str
    open_time: _timestamp_pb2.Timestamp
    close_time: _timestamp_pb2.Timestamp
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trades: int
    taker_buy_base_volume: str
    taker_buy_quote_volume: str
    def __init__(self, market: _Optional[_Union[Market, str]] = ..., symbol: _Optional[str] = ..., interval: _Optional[str] = ..., open_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., close_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., open: _Optional[str] = ..., high: _Optional[str] = ..., low: _Optional[str] = ..., close: _Optional[str] = ..., volume: _Optional[str] = ..., quote_volume: _Optional[str] = ..., trades: _Optional[int] = ..., taker_buy_base_volume: _Optional[str] = ..., taker_buy_quote_volume: _Optional[str] = ...) -> None: ...
