"""The service never logs or raises a database password: a URL psycopg rejects stops it with
one masked error, and the pool's own reconnect log lines are masked."""

from __future__ import annotations

import asyncio
import logging

import pytest

from inference.server import ServerConfig, Service
from inference.store import Store
from klinehouse.db import DatabaseUrlInvalid

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
