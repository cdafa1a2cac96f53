"""Connections to the warehouse, with one clear error when it cannot be reached."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg

from klinehouse.errors import KlinehouseError
from klinehouse.settings import get_settings


class DatabaseUnreachable(KlinehouseError):
    """PostgreSQL did not answer at the configured host and port."""


def describe(url: str) -> str:
    """host:port/database of a URL, without its credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"


def connect(
    url: str | None = None, *, autocommit: bool = False, **kwargs: object
) -> psycopg.Connection:
    """A psycopg connection to `url` (default: the settings' DATABASE_URL)."""
    url = url or get_settings().require_database_url()
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10, **kwargs)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnreachable(f"cannot reach PostgreSQL at {describe(url)}: {reason}") from exc


def sqlalchemy_url(url: str, driver: str = "psycopg2") -> str:
    """The same URL for SQLAlchemy users (dbt, Great Expectations, Airflow)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+{driver}://{rest}" if scheme in {"postgres", "postgresql"} else url


def timescaledb_enabled(conn: psycopg.Connection) -> bool:
    """Whether the connected database has the TimescaleDB extension created (migration 0001)."""
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return row is not None
