"""CandleService over a real port against the real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from inference.server import ServerThread
from inference.store import SeriesCheck
from klinehouse.v1 import candle_pb2, candle_service_pb2, candle_service_pb2_grpc

from .conftest import BARS, FIRST_OPEN

DAY_REQUEST = candle_service_pb2.GetCandlesRequest(
    symbol="BTCUSDT", interval="1h", date="2024-03-01"
)


def ts(value: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(value)
    return t


def stub(channel: grpc.Channel) -> candle_service_pb2_grpc.CandleServiceStub:
    return candle_service_pb2_grpc.CandleServiceStub(channel)


def test_get_candles_of_one_utc_date_are_exact(channel: grpc.Channel) -> None:
    response = stub(channel).GetCandles(
        candle_service_pb2.GetCandlesRequest(
            market=candle_pb2.MARKET_SPOT, symbol="BTCUSDT", interval="1h", date="2024-03-01"
        ),
        timeout=10,
    )
    candles = response.candles
    assert len(candles) == 24
    first = candles[0]
    assert first.open_time.ToDatetime(tzinfo=UTC) == datetime(2024, 3, 1, tzinfo=UTC)
    assert candles[-1].open_time.ToDatetime(tzinfo=UTC) == datetime(2024, 3, 1, 23, tzinfo=UTC)
    i = 48  # bars since 2024-02-28 00:00
    assert Decimal(first.open) == Decimal(40000 + i)
    assert Decimal(first.close) == Decimal(40000 + i) + Decimal("0.12345678")
    assert first.close.endswith("12345678")  # exact decimal text, no float round trip
    assert first.trades == 100 + i
    assert first.quote_volume == ""  # NULL in the warehouse: empty, not "0"
    assert first.symbol == "BTCUSDT" and first.interval == "1h"
    assert first.market == candle_pb2.MARKET_SPOT


def test_get_candles_of_a_range_and_lowercase_symbol(channel: grpc.Channel) -> None:
    start = datetime(2024, 3, 2, 5, tzinfo=UTC)
    response = stub(channel).GetCandles(
        candle_service_pb2.GetCandlesRequest(
            symbol="ethusdt",
            interval="1h",
            start_time=ts(start),
            end_time=ts(start + timedelta(hours=3)),
        ),
        timeout=10,
    )
    times = [c.open_time.ToDatetime(tzinfo=UTC) for c in response.candles]
    assert times == [start + timedelta(hours=h) for h in range(3)]
    assert {c.symbol for c in response.candles} == {"ETHUSDT"}


def test_history_stream_pages_the_whole_range(channel: grpc.Channel) -> None:
    pages = list(
        stub(channel).StreamCandleHistory(
            candle_service_pb2.StreamCandleHistoryRequest(
                symbol="BTCUSDT",
                interval="1h",
                start_time=ts(FIRST_OPEN - timedelta(days=30)),
                end_time=ts(FIRST_OPEN + timedelta(days=30)),
                page_size=50,
            ),
            timeout=10,
        )
    )
    assert [len(p.candles) for p in pages] == [50, 50, BARS - 100]
    times = [c.open_time.ToDatetime(tzinfo=UTC) for p in pages for c in p.candles]
    assert times == [FIRST_OPEN + timedelta(hours=h) for h in range(BARS)]


@pytest.mark.parametrize(
    ("request_fields", "code", "field"),
    [
        (
            {"symbol": "DOGEUSDT", "interval": "1h", "date": "2024-03-01"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "symbol",
        ),
        (
            {"symbol": "BTC USDT!", "interval": "1h", "date": "2024-03-01"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "symbol",
        ),
        (
            {"symbol": "BTCUSDT", "interval": "7h", "date": "2024-03-01"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "interval",
        ),
        (
            {"symbol": "BTCUSDT", "interval": "4h", "date": "2024-03-01"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "interval",
        ),
        (
            {"symbol": "BTCUSDT", "interval": "1h", "date": "2024-13-01"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "date",
        ),
        ({"symbol": "BTCUSDT", "interval": "1h"}, grpc.StatusCode.INVALID_ARGUMENT, "start_time"),
        (
            {"symbol": "BTCUSDT", "interval": "1h", "market": 42, "date": "2024-03-01"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "market",
        ),
    ],
)
def test_bad_candle_requests_name_the_field(
    channel: grpc.Channel, request_fields: dict[str, object], code: grpc.StatusCode, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub(channel).GetCandles(candle_service_pb2.GetCandlesRequest(**request_fields), timeout=10)  # type: ignore[arg-type]
    assert info.value.code() == code
    assert info.value.details().startswith(f"{field}:"), info.value.details()


def test_start_after_end_is_invalid(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub(channel).GetCandles(
            candle_service_pb2.GetCandlesRequest(
                symbol="BTCUSDT",
                interval="1h",
                start_time=ts(FIRST_OPEN + timedelta(days=1)),
                end_time=ts(FIRST_OPEN),
            ),
            timeout=10,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "start_time" in info.value.details() and "end_time" in info.value.details()


def test_range_beyond_the_page_limit_is_out_of_range_on_unary_but_streams(
    channel: grpc.Channel,
) -> None:
    far = dict(
        symbol="BTCUSDT",
        interval="1m",
        start_time=ts(FIRST_OPEN),
        end_time=ts(FIRST_OPEN + timedelta(days=30)),
    )
    with pytest.raises(grpc.RpcError) as info:
        stub(channel).GetCandles(candle_service_pb2.GetCandlesRequest(**far), timeout=10)  # type: ignore[arg-type]
    assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "StreamCandleHistory" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        list(
            stub(channel).StreamCandleHistory(
                candle_service_pb2.StreamCandleHistoryRequest(page_size=100_000, **far),
                timeout=10,  # type: ignore[arg-type]
            )
        )
    assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert info.value.details().startswith("page_size:")


def test_empty_day_of_a_known_series_is_empty_not_an_error(channel: grpc.Channel) -> None:
    response = stub(channel).GetCandles(
        candle_service_pb2.GetCandlesRequest(symbol="BTCUSDT", interval="1h", date="2023-01-01"),
        timeout=10,
    )
    assert len(response.candles) == 0


def test_a_miss_checks_the_series_once(
    channel: grpc.Channel, server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why a read found nothing costs one `check_series` query, not two."""
    assert server.service is not None
    store = server.service.store
    calls: list[tuple[str, str]] = []
    real = store.check_series

    async def counted(market: str, symbol: str) -> SeriesCheck:
        calls.append((market, symbol))
        return await real(market, symbol)

    monkeypatch.setattr(store, "check_series", counted)
    for symbol, interval, field in (("DOGEUSDT", "1h", "symbol"), ("BTCUSDT", "4h", "interval")):
        calls.clear()
        with pytest.raises(grpc.RpcError) as info:
            stub(channel).GetCandles(
                candle_service_pb2.GetCandlesRequest(
                    symbol=symbol, interval=interval, date="2024-03-01"
                ),
                timeout=10,
            )
        assert info.value.details().startswith(f"{field}:")
        assert calls == [("spot", symbol)]
        calls.clear()
        with pytest.raises(grpc.RpcError) as info:
            list(
                stub(channel).StreamCandleHistory(
                    candle_service_pb2.StreamCandleHistoryRequest(
                        symbol=symbol, interval=interval, start_time=ts(FIRST_OPEN)
                    ),
                    timeout=10,
                )
            )
        assert info.value.details().startswith(f"{field}:")
        assert calls == [("spot", symbol)]
    calls.clear()
    stub(channel).GetCandles(DAY_REQUEST, timeout=10)
    assert calls == []  # a hit checks nothing
