"""Migrations: applied once, idempotent, roles with the documented privileges."""

from __future__ import annotations

import re

import psycopg
import pytest
from psycopg import sql

from klinehouse import migrate
from klinehouse.settings import Settings


def test_upgrade_is_idempotent(database_url: str) -> None:
    assert migrate.upgrade(database_url) == []
    assert migrate.current_version(database_url) == max(m.version for m in migrate.discover())


def test_edited_migration_is_refused(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE klinehouse_meta.schema_migrations SET checksum = 'x' WHERE version = 1"
        )
    with pytest.raises(migrate.MigrationError, match="edited after it was applied"):
        migrate.upgrade(database_url)


def test_raw_markets_check_is_klines_markets(database_url: str) -> None:
    from klinehouse.klines import MARKETS

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'binance_klines_market_check'"
        ).fetchone()
    assert row is not None
    assert tuple(re.findall(r"'(\w+)'::text", row[0])) == MARKETS


def test_raw_table_has_the_kline_schema(database_url: str) -> None:
    from klinehouse.klines import COLUMNS

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = 'binance_klines'"
        ).fetchall()
        pk = conn.execute(
            "SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_index i "
            "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = 'raw.binance_klines'::regclass AND i.indisprimary"
        ).fetchone()
    columns = {name: (dtype, nullable) for name, dtype, nullable in rows}
    type_names = {
        "text": "text",
        "timestamptz": "timestamp with time zone",
        "numeric": "numeric",
        "bigint": "bigint",
    }
    for col in COLUMNS:
        assert columns[col.name] == (type_names[col.sql_type], "YES" if col.nullable else "NO")
    assert "ingested_at" in columns
    assert pk == (["market", "symbol", "interval", "open_time"],)


def _as_role(url: str, role: str) -> psycopg.Connection:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
    return conn


def test_roles_reader_sees_marts_not_raw(database_url: str, stack: Settings) -> None:
    with psycopg.connect(database_url, autocommit=True) as owner:
        owner.execute("CREATE TABLE marts.example AS SELECT 1 AS x")
    with _as_role(database_url, "klinehouse_reader") as reader:
        assert reader.execute("SELECT x FROM marts.example").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("SELECT * FROM raw.binance_klines")
    with _as_role(database_url, "klinehouse_loader") as loader:
        loader.execute(
            "INSERT INTO raw.binance_klines (market, symbol, interval, open_time, close_time, open, "
            "high, low, close, volume, source) VALUES ('spot', 'BTCUSDT', '1h', now(), now(), 1, 1, "
            "1, 1, 0, 'rest')"
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            loader.execute("SELECT * FROM marts.example")


def test_bad_rows_are_refused_by_constraints(database_url: str) -> None:
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.CheckViolation),
    ):
        conn.execute(
            "INSERT INTO raw.binance_klines (market, symbol, interval, open_time, close_time, open, "
            "high, low, close, volume, source) VALUES ('margin', 'BTCUSDT', '1h', now(), now(), 1, 1, "
            "1, 1, 0, 'rest')"
        )
