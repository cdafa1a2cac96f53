"""Versioned, idempotent SQL migrations (`klinehouse db upgrade`).

Each file `klinehouse/migrations/NNNN_name.sql` runs once, in its own
transaction, under an advisory lock so that concurrent upgrades serialise. An
applied file whose text changed afterwards is reported, never re-run silently.

A fix to an applied migration that only changes what happens where the old text
would have failed (0001's TimescaleDB preload check, its role-creation message)
records the old checksum in `EARLIER_CHECKSUMS`: databases that applied the old
text ended in the same state and stay valid. Any other edit is refused.
Server warnings (e.g. why TimescaleDB was not enabled) are logged as warnings.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import psycopg

from klinehouse.db import connect
from klinehouse.errors import KlinehouseError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_LOCK_KEY = 7_245_310_012  # any constant: identifies klinehouse's migration lock
log = logging.getLogger(__name__)

# version -> checksums of earlier texts that databases may have applied (see the docstring).
EARLIER_CHECKSUMS: dict[int, frozenset[str]] = {
    # 0001 before the shared_preload_libraries check and the missing-roles message.
    1: frozenset({"79b50f4a7a9807042a6d40137a3d099f1b9a48b57b8db521b7a6998d9d571f8b"}),
}


class MigrationError(KlinehouseError):
    """A migration failed or was edited after it was applied."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def accepts(self, checksum: str) -> bool:
        """True when `checksum` is this text's or one of its recorded earlier texts'."""
        return checksum == self.checksum or checksum in EARLIER_CHECKSUMS.get(self.version, ())


def discover() -> list[Migration]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        version, name = path.stem.split("_", 1)
        found.append(Migration(int(version), name, path.read_text()))
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise MigrationError(f"two migrations share a version number in {MIGRATIONS_DIR}")
    return found


def upgrade(url: str | None = None) -> list[str]:
    """Apply pending migrations; returns the names of those applied now."""
    applied_now: list[str] = []
    with connect(url, autocommit=True) as conn:
        conn.add_notice_handler(_log_notice)
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute("CREATE SCHEMA IF NOT EXISTS klinehouse_meta")
            conn.execute(
                """CREATE TABLE IF NOT EXISTS klinehouse_meta.schema_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {
                row[0]: row[1]
                for row in conn.execute(
                    "SELECT version, checksum FROM klinehouse_meta.schema_migrations"
                )
            }
            for migration in discover():
                if migration.version in done:
                    if not migration.accepts(done[migration.version]):
                        raise MigrationError(
                            f"migration {migration.version:04d}_{migration.name} was edited after it "
                            "was applied: add a new migration instead"
                        )
                    continue
                try:
                    with conn.transaction():
                        conn.execute(migration.sql)  # type: ignore[arg-type]
                        conn.execute(
                            "INSERT INTO klinehouse_meta.schema_migrations (version, name, checksum) "
                            "VALUES (%s, %s, %s)",
                            (migration.version, migration.name, migration.checksum),
                        )
                except Exception as exc:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} failed: {_reason(exc)}"
                    ) from exc
                applied_now.append(f"{migration.version:04d}_{migration.name}")
        finally:
            # A migration that ended the session (FATAL) took the lock with it; unlocking on
            # the closed connection would raise over the migration's own error.
            if not conn.closed:
                with contextlib.suppress(psycopg.Error):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    hint = exc.diag.message_hint if isinstance(exc, psycopg.Error) else None
    return f"{text} (hint: {hint})" if hint else text


def _log_notice(diag: psycopg.errors.Diagnostic) -> None:
    # Migrations RAISE WARNING what the operator should know; NOTICEs ("already exists,
    # skipping") are routine.
    level = logging.WARNING if diag.severity_nonlocalized == "WARNING" else logging.DEBUG
    log.log(level, "%s", diag.message_primary)


def current_version(url: str | None = None) -> int:
    with connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(max(version), 0) FROM klinehouse_meta.schema_migrations"
        ).fetchone()
    return int(row[0]) if row else 0
