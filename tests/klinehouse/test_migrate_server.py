"""Migrations against what real servers do: TimescaleDB installed but not preloaded, a
migration that ends its own session, a non-superuser owner, a template closed to sessions."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from klinehouse import migrate
from klinehouse.settings import Settings
from tests.conftest import TEMPLATE_DB


def _with_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def _superuser(database: str = "postgres") -> str:
    from devstack.stack.manager import admin_url

    url = admin_url(database=database)
    assert url is not None, "the test stack records its superuser"
    return url


@pytest.fixture
def empty_database(stack: Settings) -> Iterator[str]:
    """A database with nothing migrated, owned by the stack's (non-superuser) owner."""
    name = f"e_{uuid.uuid4().hex[:12]}"
    owner = stack.require_database_url()
    with psycopg.connect(_with_db(owner, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _with_db(owner, name)
    with psycopg.connect(_with_db(owner, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _has_raw_table(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('raw.binance_klines') IS NOT NULL").fetchone()
    return bool(row and row[0])


def test_installed_but_not_preloaded_timescaledb_is_decided_by_the_preload_setting(
    empty_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A server where `pg_available_extensions` lists timescaledb (here: a view that shadows
    the catalog's for this session) but `shared_preload_libraries` lacks it: the migration
    must not try CREATE EXTENSION (on a real server that ends the session with FATAL)."""
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA shadow")
        conn.execute(
            "CREATE VIEW shadow.pg_available_extensions AS SELECT 'timescaledb'::name AS name,"
            " '2.28.3'::text AS default_version, NULL::text AS installed_version,"
            " ''::text AS comment"
        )
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()
    assert preload is not None and "timescaledb" not in str(preload[0])
    shadowed = empty_database + "?options=-csearch_path%3Dshadow,pg_catalog"
    with caplog.at_level(logging.WARNING, logger="klinehouse.migrate"):
        applied = migrate.upgrade(shadowed)
    assert applied[0] == "0001_raw_klines"
    messages = [r.getMessage() for r in caplog.records]
    assert any("not in shared_preload_libraries" in m for m in messages), messages
    assert not any("control file" in m for m in messages), "CREATE EXTENSION was attempted"
    assert _has_raw_table(empty_database)


def test_a_migration_that_ends_its_session_reports_its_own_error(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "9999_dies.sql").write_text("SELECT pg_terminate_backend(pg_backend_pid());\n")
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", tmp_path)
    with pytest.raises(migrate.MigrationError, match="9999_dies failed") as failure:
        migrate.upgrade(database_url)
    assert "terminating connection" in str(failure.value)
    # the lock went with the session: a next upgrade is not blocked
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", tmp_path / "none")
    assert migrate.upgrade(database_url) == []


def test_earlier_text_of_an_edited_migration_stays_valid(database_url: str) -> None:
    (earlier,) = migrate.EARLIER_CHECKSUMS[1]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE klinehouse_meta.schema_migrations SET checksum = %s WHERE version = 1",
            (earlier,),
        )
    assert migrate.upgrade(database_url) == []


@pytest.fixture
def plain_owner(stack: Settings) -> Iterator[str]:
    """A database owned by a fresh LOGIN role with no attributes at all (no CREATEROLE,
    no pg_read_all_settings): what a managed PostgreSQL's administrator hands out."""
    role, name = f"owner_{uuid.uuid4().hex[:8]}", f"o_{uuid.uuid4().hex[:12]}"
    password = secrets.token_urlsafe(12)
    with psycopg.connect(_superuser(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(role)
            )
        )
    base = stack.require_database_url().rsplit("@", 1)[1]
    yield f"postgresql://{role}:{password}@{base.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(_superuser(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_a_non_superuser_owner_migrates_when_the_roles_exist(plain_owner: str) -> None:
    with psycopg.connect(plain_owner) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row == (False, False)
    assert migrate.upgrade(plain_owner)[0] == "0001_raw_klines"
    with psycopg.connect(plain_owner) as conn:
        grants = conn.execute(
            "SELECT has_table_privilege('klinehouse_loader', 'raw.binance_klines', 'INSERT'),"
            " has_table_privilege('klinehouse_reader', 'raw.binance_klines', 'SELECT')"
        ).fetchone()
    assert grants == (True, False)


def test_missing_roles_name_the_statements_an_administrator_runs(
    plain_owner: str, stack: Settings
) -> None:
    """The roles are cluster-wide; the session's own stack needs them, so the 0001 check
    runs with them hidden from this one session: a shadow pg_roles without them."""
    with psycopg.connect(plain_owner, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA shadow")
        conn.execute(
            "CREATE VIEW shadow.pg_roles AS SELECT * FROM pg_catalog.pg_roles"
            " WHERE rolname NOT IN ('klinehouse_loader', 'klinehouse_reader')"
        )
    shadowed = plain_owner + "?options=-csearch_path%3Dshadow,pg_catalog"
    with pytest.raises(migrate.MigrationError) as failure:
        migrate.upgrade(shadowed)
    message = str(failure.value)
    assert "may not create roles" in message
    assert "CREATE ROLE klinehouse_loader NOLOGIN; CREATE ROLE klinehouse_reader NOLOGIN" in message
    assert not _has_raw_table(plain_owner)  # nothing half-done


def test_the_template_is_closed_to_sessions_after_migrating(
    stack: Settings, database_url: str
) -> None:
    """TimescaleDB's background workers would hold sessions on it and make every
    CREATE DATABASE … TEMPLATE fail; a closed template cannot gain new sessions."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT datallowconn FROM pg_database WHERE datname = %s", (TEMPLATE_DB,)
        ).fetchone()
    assert row == (False,)
