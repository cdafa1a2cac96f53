"""Shared fixtures: one private local stack per test session, fresh databases and buckets.

The stack lives in its own KLINEHOUSE_HOME with ports of its own, so a test run
never touches the user's `.klinehouse/` stack and parallel runs do not collide.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from klinehouse import paths
from klinehouse.settings import Settings, get_settings

TEMPLATE_DB = "klinehouse_template"


def _db_url(base_url: str, dbname: str) -> str:
    return base_url.rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    """The embedded stack, started once for the session in a private home."""
    from devstack.stack.private import private_stack

    with private_stack("test-", migrate=False) as settings:
        _make_template(settings.require_database_url())
        yield settings


def _make_template(owner_url: str) -> None:
    """Create and migrate the template as the owner, then close it to sessions.

    TimescaleDB keeps background-worker sessions on every database with the extension,
    and `CREATE DATABASE … TEMPLATE` refuses a source "being accessed by other users":
    its workers are stopped and new connections disallowed (harmless on plain PostgreSQL).
    """
    from devstack.stack.manager import admin_url
    from klinehouse.db import timescaledb_enabled
    from klinehouse.migrate import upgrade

    with psycopg.connect(_db_url(owner_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEMPLATE_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
    upgrade(_db_url(owner_url, TEMPLATE_DB))
    superuser = admin_url() or _db_url(owner_url, "postgres")
    with psycopg.connect(_db_url(superuser, TEMPLATE_DB), autocommit=True) as conn:
        if timescaledb_enabled(conn):
            conn.execute("SELECT _timescaledb_functions.stop_background_workers()")
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(
                sql.Identifier(TEMPLATE_DB)
            )
        )
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (TEMPLATE_DB,),
        )


@pytest.fixture
def new_database(stack: Settings) -> Iterator[Callable[[], str]]:
    """A factory of fresh, migrated databases (cloned from a template); returns the owner URL."""
    created: list[str] = []
    admin = _db_url(stack.require_database_url(), "postgres")

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(TEMPLATE_DB)
                )
            )
        created.append(name)
        return _db_url(stack.require_database_url(), name)

    yield make
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in created:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def database_url(new_database: Callable[[], str]) -> str:
    """One fresh migrated database for this test."""
    return new_database()


@pytest.fixture
def lake_settings(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings whose lake is a fresh bucket on the stack's S3 endpoint."""
    from devstack.stack.s3 import ensure_bucket

    bucket = f"lake-{uuid.uuid4().hex[:10]}"
    ensure_bucket(stack.s3_endpoint_url, bucket)
    monkeypatch.setenv("KLINEHOUSE_LAKE_URI", f"s3://{bucket}/")
    yield get_settings(fresh=True)
    get_settings(fresh=True)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` with the real Binance data; tests skip with a reason where it is absent."""
    data = paths.shared_data_dir()
    if not (data / "binance").is_dir():
        pytest.skip(
            f"real market data not found at {data} (expected ../shared/data beside the checkout)"
        )
    return data


@pytest.fixture
def binance_standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The Binance REST/archive stand-in on 127.0.0.1, with KLINEHOUSE_BINANCE_*_URL set to it.

    Yields a `devstack.standin.binance_rest.StandinThread`: `.url`, `.config` (clock,
    latency, faults, weight limits), `.stats`. Serves ../shared/data/binance when present,
    seeded synthetic candles otherwise.
    """
    from devstack.standin.binance_rest import StandinThread, default_data_dir

    with StandinThread(default_data_dir()) as standin:
        for key, value in standin.env().items():
            monkeypatch.setenv(key, value)
        get_settings(fresh=True)
        yield standin
    get_settings(fresh=True)
