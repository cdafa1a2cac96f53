"""The service never logs or shows a credential: a URL psycopg rejects stops it with one masked
error, the pool's own reconnect log lines are masked, and so is a champion load failure that
clients see in FAILED_PRECONDITION."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import grpc
import pytest

from inference.server import ServerConfig, ServerThread, Service
from inference.store import Store
from klinehouse.db import DatabaseUrlInvalid
from klinehouse.settings import Settings
from klinehouse.v1 import prediction_service_pb2 as pb
from klinehouse.v1 import prediction_service_pb2_grpc

from ..marts import create_database, drop_database, with_db

BAD_URL = "postgresql+psycopg://reader:SECRET@127.0.0.1:5432/k"


def test_a_url_psycopg_rejects_stops_the_service_with_a_masked_error() -> None:
    with pytest.raises(DatabaseUrlInvalid) as info:
        Service(ServerConfig(address="127.0.0.1:0", database_url=BAD_URL))
    assert "SECRET" not in str(info.value)
    assert "reader:***@127.0.0.1" in str(info.value)


def test_pool_log_lines_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(DatabaseUrlInvalid):  # the service masks the process's log records
        Service(ServerConfig(address="127.0.0.1:0", database_url=BAD_URL))

    async def run_pool() -> None:
        store = Store(BAD_URL, min_size=1, max_size=1)
        await store.open()
        for _ in range(50):
            if any(r.name.startswith("psycopg.pool") for r in caplog.records):
                break
            await asyncio.sleep(0.1)
        await store.close()

    with caplog.at_level(logging.WARNING):
        asyncio.run(run_pool())
    pool_lines = [r.getMessage() for r in caplog.records if r.name.startswith("psycopg.pool")]
    assert pool_lines, caplog.text
    assert any("reader:***@" in line for line in pool_lines), pool_lines
    assert "SECRET" not in caplog.text


def test_a_champion_load_failure_reaches_clients_masked(
    predicting_template: str,
    stack: Settings,
    lake_settings: Settings,
    server_factory: Callable[..., ServerThread],
) -> None:
    from .test_predictions import register

    def leaky_loader(url: str | None, market: str, interval: str) -> None:
        raise RuntimeError(
            'Could not connect to the endpoint URL: "http://AK:SECRET@127.0.0.1:1/m"'
        )

    name = create_database(stack, predicting_template, prefix="leak_t_")  # marts built by dbt
    try:
        register(
            with_db(stack.require_database_url(), name), "m-leak", buy=0.5, sell=0.5, quality=0.01
        )
        _expect_masked_load_failure(
            server_factory(with_db(stack.reader_url(), name), loader=leaky_loader)
        )
    finally:
        drop_database(stack, name)


def _expect_masked_load_failure(server: ServerThread) -> None:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(
        grpc.insecure_channel(f"127.0.0.1:{server.port}")
    )
    deadline = time.monotonic() + 20
    while True:
        with pytest.raises(grpc.RpcError) as info:
            stub.GetPrediction(pb.GetPredictionRequest(symbol="BTCUSDT", interval="1h"), timeout=5)
        details = info.value.details()
        if "the last load failed" in details or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "the last load failed" in details, details
    assert "SECRET" not in details and "http://AK:***@127.0.0.1:1/m" in details
