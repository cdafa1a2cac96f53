"""The service over the marts as dbt (issue 5) builds them from raw.binance_klines."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import polars as pl
import psycopg

from inference.server import ServerThread
from klinehouse.settings import Settings
from klinehouse.v1 import candle_service_pb2, candle_service_pb2_grpc, prediction_service_pb2_grpc
from klinehouse.v1 import prediction_service_pb2 as pb
from transform.runner import run_dbt

from ..marts import klines, seed_and_build
from .conftest import MARTS, D, hourly, land_candles

FIRST = datetime(2024, 2, 27, tzinfo=UTC)
BARS = 72


def raw_klines(symbol: str, first: datetime, bars: int) -> pl.DataFrame:
    """Klines for raw: a sine-wave price, varied closes and volumes, every column filled."""
    price = (100 + (pl.col("i") / 3.0).sin() * 10).round(8).cast(D)
    return klines(
        symbol,
        hourly(first, bars),
        open=price,
        high=price + pl.lit(Decimal("2.5")),
        low=price - pl.lit(Decimal("2.25")),
        close=price + ((pl.col("i") % 3 - 1).cast(D) * pl.lit(Decimal("0.12345678"))),
        volume=10 + pl.col("i") % 5,
        quote_volume=pl.lit(Decimal("1000.5")),
        trades=100 + pl.col("i"),
        taker_buy_base_volume=pl.lit(Decimal("5.25")),
        taker_buy_quote_volume=pl.lit(Decimal("500.125")),
    )


def test_candles_and_predictions_over_dbt_built_marts(
    database_url: str,
    stack: Settings,
    lake_settings: Settings,
    server_factory: Callable[..., ServerThread],
) -> None:
    from .test_predictions import register

    seed_and_build(
        database_url, [raw_klines(symbol, FIRST, BARS) for symbol in ("BTCUSDT", "ETHUSDT")], MARTS
    )
    reader = stack.reader_url().rsplit("/", 1)[0] + "/" + database_url.rsplit("/", 1)[1]
    server = server_factory(reader)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        candles = candle_service_pb2_grpc.CandleServiceStub(ch).GetCandles(
            candle_service_pb2.GetCandlesRequest(
                symbol="ETHUSDT", interval="1h", date="2024-02-28"
            ),
            timeout=10,
        )
        assert len(candles.candles) == 24
        with psycopg.connect(database_url) as conn:
            want = conn.execute(
                "SELECT close FROM raw.binance_klines WHERE symbol = 'ETHUSDT' "
                "AND open_time = '2024-02-28T00:00:00Z'"
            ).fetchone()
        assert want is not None and Decimal(candles.candles[0].close) == want[0]
        assert candles.candles[0].trades == 124

        register(database_url, "dbt-m1", buy=0.0, sell=0.0, quality=0.01)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
        server.call(server.service.champion.refresh())  # type: ignore[union-attr]
        p = stub.GetPrediction(pb.GetPredictionRequest(symbol="BTCUSDT", interval="1h"), timeout=10)
        last = FIRST + timedelta(hours=BARS - 1)
        assert p.prediction.feature_open_time.ToDatetime(tzinfo=UTC) == last
        assert p.prediction.model_version == "dbt-m1" and p.prediction.stale

        # a new bar as ingester and scheduler bring it: raw + NOTIFY klinehouse_candles
        # (not in the incremental marts.candles yet), then the transform, which announces
        # the marts itself (no NOTIFY klinehouse_marts by hand here)
        call = candle_service_pb2_grpc.CandleServiceStub(ch).StreamCandles(
            candle_service_pb2.StreamCandlesRequest(symbols=["BTCUSDT"], interval="1h"),
            timeout=60,
        )
        land_candles(
            database_url, raw_klines("BTCUSDT", last + timedelta(hours=1), 1), transform=False
        )
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_notify('klinehouse_candles', %s)",
                [json.dumps({"market": "spot", "symbol": "BTCUSDT", "interval": "1h"})],
            )
        run_dbt(["run", "--select", "candles"], database_url=database_url)
        message = next(call)
        call.cancel()
        assert [c.open_time.ToDatetime(tzinfo=UTC) for c in message.candles] == [
            last + timedelta(hours=1)
        ]
        p2 = stub.GetPrediction(
            pb.GetPredictionRequest(symbol="BTCUSDT", interval="1h"), timeout=10
        )
        assert p2.prediction.feature_open_time.ToDatetime(tzinfo=UTC) == last + timedelta(hours=1)
