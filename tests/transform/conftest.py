"""Fixtures for the dbt project: a per-test warehouse with real Binance klines loaded
through the extract package's own import functions, and dbt pointed at it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from klinehouse.settings import Settings, get_settings

_ARCHIVE_NAME = re.compile(r"(?P<symbol>[A-Z0-9]+)-(?P<interval>\w+)-\d{4}-\d{2}\.csv$")


@pytest.fixture(scope="module")
def module_warehouse(stack: Settings) -> Iterator[str]:
    """One fresh migrated database shared by a test module (a dbt build costs ~30 s here),
    which get_settings() and so run_dbt point at while the module runs."""
    admin = stack.require_database_url().rsplit("/", 1)[0] + "/postgres"
    name = f"t_dbt_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier("klinehouse_template")
            )
        )
    url = admin.rsplit("/", 1)[0] + "/" + name
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KLINEHOUSE_DATABASE_URL", url)
        get_settings(fresh=True)
        yield url
    get_settings(fresh=True)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def warehouse(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh migrated database that get_settings() (and so run_dbt) points at."""
    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", database_url)
    get_settings(fresh=True)
    return database_url


def _load_archives(url: str, files: Iterable[Path], *, market: str = "spot") -> int:
    """Load data.binance.vision CSVs via extract.archive + extract.load; returns rows inserted."""
    from extract.archive import read_archive_csv
    from extract.load import load_frame

    inserted = 0
    for path in sorted(files):
        match = _ARCHIVE_NAME.search(path.name)
        assert match, f"not an archive file name: {path.name}"
        frame = read_archive_csv(
            path, market=market, symbol=match["symbol"], interval=match["interval"]
        )
        inserted += load_frame(frame, url=url).inserted
    return inserted


def _query(url: str, statement: str, *params: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(statement, params or None).fetchall()


@pytest.fixture(scope="session")
def load_archives() -> Callable[..., int]:
    return _load_archives


@pytest.fixture(scope="session")
def query() -> Callable[..., list[tuple]]:
    return _query
