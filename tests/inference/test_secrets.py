"""The service never logs or shows a credential: a URL psycopg rejects stops it with one masked
error, the pool's own reconnect log lines are masked, and so is a champion load failure that
clients see in FAILED_PRECONDITION."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import grpc
import psycopg
import pytest

from inference.server import ServerConfig, ServerThread, Service
from inference.store import Store
from klinehouse.db import DatabaseUrlInvalid
from klinehouse.settings import Settings
from klinehouse.v1 import prediction_service_pb2 as pb
from klinehouse.v1 import prediction_service_pb2_grpc

from .conftest import FIRST_OPEN, create_marts, insert_features

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
    database_url: str,
    stack: Settings,
    lake_settings: Settings,
    server_factory: Callable[..., ServerThread],
) -> None:
    from .test_predictions import register

    def leaky_loader(url: str | None) -> None:
        raise RuntimeError(
            'Could not connect to the endpoint URL: "http://AK:SECRET@127.0.0.1:1/m"'
        )

    with psycopg.connect(database_url, autocommit=True) as conn:
        create_marts(conn)
        insert_features(conn, "BTCUSDT", FIRST_OPEN, 0.01)
    register(database_url, "m-leak", buy=0.5, sell=0.5, quality=0.01)
    reader = stack.reader_url().rsplit("/", 1)[0] + "/" + database_url.rsplit("/", 1)[1]
    server = server_factory(reader, loader=leaky_loader)
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
