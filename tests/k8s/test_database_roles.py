"""The TimescaleDB first-start script (k8s/base/timescaledb/initdb, also mounted by
docker-compose) against the project's real PostgreSQL: it creates the login roles
the manifests connect as, and those roles can do exactly what the services need —
the ingester loads raw (as a member of klinehouse_loader), the gRPC service reads
ml/marts (as a member of klinehouse_reader) and nothing more."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import polars as pl
import psycopg
import pytest

from klinehouse import klines
from klinehouse.settings import Settings

from .checks import REPO

SCRIPT = REPO / "k8s/base/timescaledb/initdb/10-klinehouse-roles.sh"
ROLES = ("klinehouse_ingest", "klinehouse_api", "airflow")

pytestmark = pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")


def with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{user}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def run_script(owner_url: str, passwords: dict[str, str]) -> subprocess.CompletedProcess[str]:
    parts = urlsplit(owner_url)
    env = {
        "PATH": os.environ["PATH"],
        "PGHOST": parts.hostname or "127.0.0.1",
        "PGPORT": str(parts.port or 5432),
        "PGPASSWORD": parts.password or "",
        "POSTGRES_USER": parts.username or "postgres",
        "POSTGRES_DB": parts.path.lstrip("/"),
        **passwords,
    }
    return subprocess.run(
        [str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def as_superuser(database_url: str) -> str:
    """The script runs as the container's superuser (POSTGRES_USER), not the warehouse owner."""
    from devstack.stack.manager import admin_url

    admin = admin_url(database=database_url.rsplit("/", 1)[1])
    assert admin is not None, "the test stack records its superuser"
    return admin


@pytest.fixture
def roles(stack: Settings, database_url: str) -> Iterator[dict[str, str]]:
    passwords = {
        "KLINEHOUSE_INGEST_PASSWORD": secrets.token_hex(16),
        "KLINEHOUSE_API_PASSWORD": secrets.token_hex(16),
        "AIRFLOW_DB_PASSWORD": secrets.token_hex(16),
    }
    yield passwords
    admin = as_superuser(database_url).rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS airflow WITH (FORCE)")
        for role in ROLES:
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def one_kline() -> pl.DataFrame:
    open_time = datetime(2024, 3, 1, tzinfo=UTC)
    price = Decimal("42123.45000000")
    row = {
        "market": "spot",
        "symbol": "BTCUSDT",
        "interval": "1m",
        "open_time": open_time,
        "close_time": open_time + timedelta(minutes=1) - timedelta(milliseconds=1),
        "open": price,
        "high": price,
        "low": price,
        "close": price,
        "volume": Decimal("1.5"),
        "quote_volume": Decimal("63185.175"),
        "trades": 10,
        "taker_buy_base_volume": Decimal("0.5"),
        "taker_buy_quote_volume": Decimal("21061.725"),
        "source": "stream",
    }
    return pl.DataFrame([row], schema=klines.polars_schema())


def test_initdb_roles_give_each_service_exactly_its_privileges(
    database_url: str, roles: dict[str, str]
) -> None:
    first = run_script(as_superuser(database_url), roles)
    assert first.returncode == 0, first.stderr
    again = run_script(as_superuser(database_url), roles)  # idempotent
    assert again.returncode == 0, again.stderr

    with psycopg.connect(database_url) as conn:
        members = dict(
            conn.execute(
                """SELECT m.rolname, g.rolname FROM pg_auth_members a
                   JOIN pg_roles m ON m.oid = a.member JOIN pg_roles g ON g.oid = a.roleid
                   WHERE m.rolname IN ('klinehouse_ingest', 'klinehouse_api')"""
            ).fetchall()
        )
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'airflow'"
        ).fetchone()
    assert members == {
        "klinehouse_ingest": "klinehouse_loader",
        "klinehouse_api": "klinehouse_reader",
    }
    assert owner == ("airflow",)

    # the ingester, as deployed (KLINEHOUSE_DATABASE_URL = klinehouse_ingest), loads raw
    from extract.load import load_frame

    ingest_url = with_user(database_url, "klinehouse_ingest", roles["KLINEHOUSE_INGEST_PASSWORD"])
    stats = load_frame(one_kline(), url=ingest_url)
    assert stats.inserted == 1
    with psycopg.connect(ingest_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM raw.binance_klines")
    with psycopg.connect(ingest_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("CREATE TABLE marts.not_yours (x int)")

    # the gRPC service reads the registry but not raw
    api_url = with_user(database_url, "klinehouse_api", roles["KLINEHOUSE_API_PASSWORD"])
    with psycopg.connect(api_url) as conn:
        conn.execute("SELECT count(*) FROM ml.model_registry").fetchone()
    with psycopg.connect(api_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT count(*) FROM raw.binance_klines")

    # and a wrong password is refused (no trust authentication hides a mistake)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(with_user(database_url, "klinehouse_api", "wrong")).close()


def test_initdb_script_refuses_to_run_without_a_password(
    database_url: str, roles: dict[str, str]
) -> None:
    proc = run_script(as_superuser(database_url), {**roles, "KLINEHOUSE_API_PASSWORD": ""})
    assert proc.returncode != 0
    assert "KLINEHOUSE_API_PASSWORD is not set" in proc.stderr
    with psycopg.connect(database_url) as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'klinehouse_api'").fetchone()
            is None
        )


def test_script_is_the_one_compose_mounts() -> None:
    compose = (REPO / "docker-compose.yml").read_text()
    assert f"./{Path(SCRIPT).parent.relative_to(REPO)}:/docker-entrypoint-initdb.d:ro" in compose
