"""One warehouse of real data for the gate's tests, and copies of its tables to break.

The warehouse is built once per session (load through `extract`, marts through
dbt) and never modified: each test copies the tables it needs into a schema of
its own, injects its defect there and validates that schema.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from klinehouse.settings import Settings

TEMPLATE_DB = "klinehouse_template"  # made by the root conftest's `stack` fixture
_ARCHIVE_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]+)-(?P<interval>\w+)-\d{4}-\d{2}\.csv$")
MARTS = ("candles", "candle_gaps", "candle_features", "candle_labels")


def _load_archives(url: str, folder: Path) -> None:
    from extract.archive import read_archive_csv
    from extract.load import load_frame

    for path in sorted(folder.glob("*.csv")):
        match = _ARCHIVE_NAME.match(path.name)
        assert match, f"not an archive file name: {path.name}"
        frame = read_archive_csv(
            path, market="spot", symbol=match["symbol"], interval=match["interval"]
        )
        load_frame(frame, url=url)


@pytest.fixture(scope="session")
def warehouse(stack: Settings, shared_data: Path) -> Iterator[str]:
    """Real spot klines (BTC, ETH 2024-11..2025-05; BTC 2023 with its outage gap) and marts."""
    from transform.runner import run_dbt

    admin = stack.require_database_url().rsplit("/", 1)[0] + "/postgres"
    name = f"gate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(TEMPLATE_DB)
            )
        )
    url = admin.rsplit("/", 1)[0] + "/" + name
    try:
        _load_archives(url, shared_data / "binance" / "spot-archive")
        _load_archives(url, shared_data / "binance" / "spot-archive-with-header")
        run_dbt(["run"], database_url=url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def copy_schema(warehouse: str) -> Iterator[Callable[..., str]]:
    """`copy(*tables)`: a fresh schema holding copies (no keys) of raw/marts tables."""
    made: list[str] = []

    def copy(*tables: str) -> str:
        schema = f"qa_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(warehouse) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            for table in tables:
                source = "raw" if table == "binance_klines" else "marts"
                # CREATE TABLE AS: same columns and types, no constraints, so defects fit.
                conn.execute(
                    sql.SQL("CREATE TABLE {} AS SELECT * FROM {}").format(
                        sql.Identifier(schema, table), sql.Identifier(source, table)
                    )
                )
        made.append(schema)
        return schema

    yield copy
    with psycopg.connect(warehouse) as conn:
        for schema in made:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
