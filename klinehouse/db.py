"""Connections to the warehouse, with one clear error when it cannot be reached."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from klinehouse.errors import KlinehouseError
from klinehouse.redact import exception_text, mask
from klinehouse.settings import get_settings


class DatabaseUnreachable(KlinehouseError):
    """PostgreSQL did not answer at the configured host and port."""


class DatabaseUrlInvalid(KlinehouseError):
    """psycopg cannot parse the database URL; the message shows it with its password masked."""


def check_url(url: str) -> str:
    """`url` when psycopg accepts it, else DatabaseUrlInvalid (credentials masked)."""
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        scheme = url.split("://", 1)[0] if "://" in url else ""
        hint = (
            f" (psycopg takes postgresql://..., not the SQLAlchemy form {scheme}://...)"
            if "+" in scheme
            else ""
        )
        raise DatabaseUrlInvalid(
            f"not a PostgreSQL URL psycopg accepts: {exception_text(exc)}{hint}"
        ) from None
    return url


def describe(url: str) -> str:
    """host:port/database of a URL, without its credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"


def connect(
    url: str | None = None, *, autocommit: bool = False, **kwargs: object
) -> psycopg.Connection:
    """A psycopg connection to `url` (default: the settings' DATABASE_URL)."""
    url = check_url(url or get_settings().require_database_url())
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10, **kwargs)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        lines = str(exc).strip().splitlines()
        reason = mask(lines[-1]) if lines else type(exc).__name__
        raise DatabaseUnreachable(f"cannot reach PostgreSQL at {describe(url)}: {reason}") from exc


def sqlalchemy_url(url: str, driver: str = "psycopg2") -> str:
    """The same URL for SQLAlchemy users (dbt, Great Expectations, Airflow)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+{driver}://{rest}" if scheme in {"postgres", "postgresql"} else url


def timescaledb_enabled(conn: psycopg.Connection) -> bool:
    """Whether the connected database has the TimescaleDB extension created (migration 0001)."""
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return row is not None
