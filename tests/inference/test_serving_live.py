"""Serving is live and stays up (issue 14, items 2-4): a candle the ingester commits
reaches StreamCandles and StreamPredictions without any dbt run, invalid bars are
never served, no RPC fails while a full-refresh transform runs, a busy pool is
RESOURCE_EXHAUSTED (never the end of a waiting stream), and bad input gets precise
codes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any

import grpc
import polars as pl
import psycopg
import pytest

from extract.load import load_frame
from extract.stream.sink import Committer
from inference import store as store_module
from inference.server import ServerThread
from klinehouse.settings import Settings
from klinehouse.v1 import candle_service_pb2 as cpb
from klinehouse.v1 import candle_service_pb2_grpc
from klinehouse.v1 import prediction_service_pb2 as pb
from transform.runner import run_dbt

from ..marts import create_database, drop_database, with_db
from .conftest import FIRST_OPEN, MARTS, candles
from .test_candles import ts
from .test_predictions import register, stub_of, wait_for_version

NEXT_BAR = FIRST_OPEN + timedelta(hours=48)  # after the template's 48 bars


@pytest.fixture(scope="module")
def live_template(stack: Settings) -> Iterator[str]:
    """Raw klines only, through the loader: no dbt model was ever built here (serving
    needs none). BTCUSDT and ETHUSDT: 48 hourly bars from FIRST_OPEN."""
    name = create_database(stack, prefix="live_tpl_")
    owner = with_db(stack.require_database_url(), name)
    for k, symbol in enumerate(("BTCUSDT", "ETHUSDT")):
        load_frame(candles(symbol, FIRST_OPEN, 48, base=str(1000 * (k + 1))), url=owner)
    yield name
    drop_database(stack, name)


@pytest.fixture
def served(
    live_template: str, stack: Settings, server_factory: Callable[..., ServerThread]
) -> Iterator[tuple[str, ServerThread]]:
    """A clone of the template with a champion, served with a pool of 2."""
    name = create_database(stack, live_template, prefix="live_")
    owner = with_db(stack.require_database_url(), name)
    try:
        server = server_factory(with_db(stack.reader_url(), name), pool_max_size=2)
        register(owner, "m1", buy=0.0, sell=0.0, quality=0.01)
        wait_for_version(stub_of(server), "m1")
        yield owner, server
    finally:
        drop_database(stack, name)


def candle_stub(server: ServerThread) -> candle_service_pb2_grpc.CandleServiceStub:
    return candle_service_pb2_grpc.CandleServiceStub(
        grpc.insecure_channel(f"127.0.0.1:{server.port}")
    )


def test_an_ingested_candle_is_streamed_and_predicted_without_dbt(
    served: tuple[str, ServerThread],
) -> None:
    owner, server = served
    candles_call = candle_stub(server).StreamCandles(
        cpb.StreamCandlesRequest(symbols=["ETHUSDT"], interval="1h"), timeout=30
    )
    predictions_call = stub_of(server).StreamPredictions(
        pb.StreamPredictionsRequest(symbols=["ETHUSDT"], interval="1h"), timeout=30
    )
    first = next(predictions_call).prediction
    assert first.feature_open_time.ToDatetime(tzinfo=UTC) == NEXT_BAR - timedelta(hours=1)

    committer = Committer(owner)  # the ingester's commit: upsert + NOTIFY in one transaction
    try:
        # an invalid bar (high below low) and an off-grid one: committed, never served
        invalid = candles("ETHUSDT", NEXT_BAR, 1, base="2048").with_columns(
            pl.col("low") + pl.lit(Decimal(10))
        )
        off_grid = candles("ETHUSDT", NEXT_BAR + timedelta(minutes=30), 1, base="2048")
        committer.commit(pl.concat([invalid, off_grid]))
        committer.commit(candles("ETHUSDT", NEXT_BAR, 1, base="2049"))  # revised: now valid
    finally:
        committer.close()
    live = next(candles_call)
    assert [(c.symbol, c.open_time.ToDatetime(tzinfo=UTC)) for c in live.candles] == [
        ("ETHUSDT", NEXT_BAR)
    ]
    assert live.candles[0].open == "2049.00000000"
    second = next(predictions_call).prediction
    assert second.feature_open_time.ToDatetime(tzinfo=UTC) == NEXT_BAR
    candles_call.cancel()
    predictions_call.cancel()
    with psycopg.connect(owner) as conn:  # no dbt model exists: none was needed
        row = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'marts'"
        ).fetchone()
    assert row == (0,)


def test_no_rpc_fails_while_a_full_refresh_transform_runs(
    served: tuple[str, ServerThread],
) -> None:
    owner, server = served
    predictions, candles_ = stub_of(server), candle_stub(server)
    errors: list[str] = []
    calls = [0]
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                predictions.GetPrediction(
                    pb.GetPredictionRequest(symbol="BTCUSDT", interval="1h"), timeout=10
                )
                predictions.GetAdvice(pb.GetAdviceRequest(interval="1h"), timeout=10)
                candles_.GetCandles(
                    cpb.GetCandlesRequest(symbol="ETHUSDT", interval="1h", date="2024-02-29"),
                    timeout=10,
                )
                calls[0] += 1
            except grpc.RpcError as exc:
                errors.append(f"{exc.code()}: {exc.details()}")

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        run_dbt(["run", "--full-refresh", "--select", *MARTS], database_url=owner)
        run_dbt(["run", "--select", *MARTS], database_url=owner)
    finally:
        stop.set()
        thread.join(20)
    assert not errors, errors[:3]
    assert calls[0] > 3  # the loop really ran during the transforms


def _hold(server: ServerThread, release: threading.Event) -> threading.Event:
    """Take every connection of the server's pool until `release` is set."""
    assert server.service is not None
    pool = server.service.store.pool
    held = threading.Event()

    async def hold() -> None:
        conns = [await pool.getconn(timeout=10) for _ in range(pool.max_size)]
        held.set()
        while not release.is_set():
            await asyncio.sleep(0.05)
        for conn in conns:
            await pool.putconn(conn)

    asyncio.run_coroutine_threadsafe(hold(), server.loop)
    assert held.wait(10)
    return held


def test_a_busy_pool_queues_or_is_exhausted_and_never_ends_a_waiting_stream(
    served: tuple[str, ServerThread],
) -> None:
    owner, server = served
    stub = candle_stub(server)
    day = cpb.GetCandlesRequest(symbol="ETHUSDT", interval="1h", date="2024-02-29")
    stream = stub.StreamCandles(
        cpb.StreamCandlesRequest(symbols=["ETHUSDT"], interval="1h"), timeout=30
    )
    assert server.service is not None
    listener = server.service.listener
    deadline = time.monotonic() + 10
    while not listener._subs:  # the stream has subscribed
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)  # ... and read where it stands
    release = threading.Event()
    _hold(server, release)
    try:
        # the stream wakes up to a new candle while no connection is free: it waits
        Committer(owner).commit(candles("ETHUSDT", NEXT_BAR, 1, base="2049"))
        with pytest.raises(grpc.RpcError) as info:
            stub.GetCandles(day, timeout=1.5)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value.details()
        assert "busy" in info.value.details()
        queued: dict[str, Any] = {}
        waiter = threading.Thread(target=lambda: queued.update(r=stub.GetCandles(day, timeout=10)))
        waiter.start()
        time.sleep(0.8)  # more than three wait slices: the call is queued, not failed
    finally:
        release.set()
    waiter.join(10)
    assert len(queued["r"].candles) == 24
    live = next(stream)  # the stream lived through the wait and delivers the candle
    assert [c.open_time.ToDatetime(tzinfo=UTC) for c in live.candles] == [NEXT_BAR]
    stream.cancel()


def test_bad_input_gets_precise_codes(
    served: tuple[str, ServerThread], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, server = served
    candles_, predictions = candle_stub(server), stub_of(server)
    with pytest.raises(grpc.RpcError) as info:  # thousands of symbols
        predictions.GetAdvice(
            pb.GetAdviceRequest(symbols=[f"S{i:04d}USDT" for i in range(3000)], interval="1h"),
            timeout=10,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("symbols:")
    thousands = [f"S{i:04d}USDT" for i in range(3000)]
    for open_stream in (  # the streams too, before any of them is subscribed or read
        lambda: candles_.StreamCandles(
            cpb.StreamCandlesRequest(symbols=thousands, interval="1h"), timeout=10
        ),
        lambda: predictions.StreamPredictions(
            pb.StreamPredictionsRequest(symbols=thousands, interval="1h"), timeout=10
        ),
    ):
        with pytest.raises(grpc.RpcError) as info:
            next(open_stream())
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details().startswith("symbols: 3000 symbols")
    monkeypatch.setattr(store_module, "MAX_SERIES", 1)  # a market of more series than that
    with pytest.raises(grpc.RpcError) as info:
        predictions.GetAdvice(pb.GetAdviceRequest(interval="1h"), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "more than 1 series" in info.value.details()
    monkeypatch.undo()
    with pytest.raises(grpc.RpcError) as info:  # a page past the series' newest bar
        candles_.GetCandles(
            cpb.GetCandlesRequest(
                symbol="ETHUSDT",
                interval="1h",
                start_time=ts(NEXT_BAR + timedelta(days=3)),
                end_time=ts(NEXT_BAR + timedelta(days=4)),
            ),
            timeout=10,
        )
    assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert info.value.details().startswith("start_time:")
    with pytest.raises(grpc.RpcError) as info:  # the history stream's page past the end too
        list(
            candles_.StreamCandleHistory(
                cpb.StreamCandleHistoryRequest(
                    symbol="ETHUSDT", interval="1h", start_time=ts(NEXT_BAR + timedelta(days=3))
                ),
                timeout=10,
            )
        )
    assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert info.value.details().startswith("start_time:")
    # a series in the catalogue whose only bar is invalid: no bars to serve yet
    bad = candles("DOGEUSDT", NEXT_BAR, 1).with_columns(pl.col("low") + pl.lit(Decimal(10)))
    Committer(owner).commit(bad)
    with pytest.raises(grpc.RpcError) as info:
        predictions.GetPrediction(
            pb.GetPredictionRequest(symbol="DOGEUSDT", interval="1h"), timeout=10
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND, info.value.details()
    assert "DOGEUSDT" in info.value.details()
    for call in (  # the same for the advice over it and its prediction stream
        lambda: predictions.GetAdvice(
            pb.GetAdviceRequest(symbols=["ETHUSDT", "DOGEUSDT"], interval="1h"), timeout=10
        ),
        lambda: next(
            predictions.StreamPredictions(
                pb.StreamPredictionsRequest(symbols=["DOGEUSDT"], interval="1h"), timeout=10
            )
        ),
    ):
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert info.value.code() == grpc.StatusCode.NOT_FOUND, info.value.details()
        assert "DOGEUSDT 1h has no servable bars" in info.value.details()
    payload = json.dumps({"market": "spot"})  # a malformed notification changes nothing
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute("SELECT pg_notify('klinehouse_candles', %s)", [payload])
    response = predictions.GetPrediction(
        pb.GetPredictionRequest(symbol="ETHUSDT", interval="1h"), timeout=10
    )
    assert response.prediction.symbol == "ETHUSDT"


def test_a_prediction_stream_outlives_the_database_going_away(
    served: tuple[str, ServerThread],
) -> None:
    """As StreamCandles does: a StreamPredictions woken while the database is known down
    (the LISTEN connection's view, server.py) waits for it and then sends the new bar's
    prediction, rather than ending with UNAVAILABLE."""
    owner, server = served
    assert server.service is not None
    service = server.service
    call = stub_of(server).StreamPredictions(
        pb.StreamPredictionsRequest(symbols=["ETHUSDT"], interval="1h"), timeout=30
    )
    assert next(call).prediction.feature_open_time.ToDatetime(tzinfo=UTC) == NEXT_BAR - timedelta(
        hours=1
    )
    server.call(service._database_state(False))
    try:
        Committer(owner).commit(candles("ETHUSDT", NEXT_BAR, 1, base="2049"))
        time.sleep(1.5)  # the stream is woken and meets the database down
    finally:
        server.call(service._database_state(True))
    second = next(call).prediction
    assert second.feature_open_time.ToDatetime(tzinfo=UTC) == NEXT_BAR
    call.cancel()
