"""Run dbt on the warehouse of the current settings.

The dbt profile (`dbt_project/profiles.yml`) reads only environment variables;
`dbt_env()` derives them from `klinehouse.settings`, so `klinehouse transform`,
the Airflow DAGs and the tests point dbt at exactly the database klinehouse
uses. dbt runs in-process (`dbtRunner`): its ~4 s of imports are paid once per
process, not once per invocation.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from klinehouse import paths, redact
from klinehouse.envvars import temporary_environ
from klinehouse.errors import KlinehouseError
from klinehouse.settings import get_settings

PROJECT_DIR = paths.REPO_ROOT / "dbt_project"
_LOCK = threading.Lock()  # dbtRunner shares process-global state: one invocation at a time
_FAILED = {"error", "fail", "runtime error"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MESSAGE_LINES = 12  # a unit test's diff table is worth showing
_WRITES_MARTS = {"run", "build"}


def target_dir() -> Path:
    """Where dbt writes manifest.json, run_results.json and the docs site.

    `$DBT_TARGET_PATH` when set, else `<KLINEHOUSE_HOME>/dbt/target`, so that
    parallel stacks (tests, benchmarks) never share dbt's artifacts.
    """
    configured = get_settings(fresh=True).dbt_target_path
    return Path(configured) if configured else paths.home() / "dbt" / "target"


def manifest_path() -> Path:
    return target_dir() / "manifest.json"


def dbt_env(database_url: str | None = None) -> dict[str, str]:
    """The environment variables profiles.yml reads, from a PostgreSQL URL (default: settings)."""
    url = database_url or get_settings().require_database_url()
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"} or not parts.path.strip("/"):
        raise KlinehouseError(
            "KLINEHOUSE_DATABASE_URL must look like postgresql://user:password@host:port/dbname"
        )
    query = parse_qs(parts.query)
    env = {
        "KLINEHOUSE_DBT_HOST": parts.hostname or "localhost",
        "KLINEHOUSE_DBT_PORT": str(parts.port or 5432),
        "KLINEHOUSE_DBT_USER": unquote(parts.username or os.environ.get("USER", "postgres")),
        "KLINEHOUSE_DBT_DBNAME": unquote(parts.path.strip("/")),
        "DBT_ENV_SECRET_KLINEHOUSE_PASSWORD": unquote(parts.password or ""),
        "DBT_PROFILES_DIR": str(PROJECT_DIR),
        "DBT_PROJECT_DIR": str(PROJECT_DIR),
        "DBT_TARGET_PATH": str(target_dir()),
        "DBT_LOG_PATH": str(target_dir().parent / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        # Features use UTC calendars; libpq sets the session time zone from PGTZ.
        "PGTZ": "UTC",
    }
    if "sslmode" in query:
        env["KLINEHOUSE_DBT_SSLMODE"] = query["sslmode"][-1]
    return env


def _describe_failures(result: Any) -> list[str]:
    failures = []
    for node_result in getattr(result, "results", None) or []:
        status = str(getattr(node_result.status, "value", node_result.status))
        if status not in _FAILED:
            continue
        node = getattr(node_result, "node", None)
        name = getattr(node, "unique_id", None) or "a dbt node"
        message = _ANSI.sub("", str(node_result.message or status)).strip().splitlines()
        shown = "\n    ".join(message[:_MESSAGE_LINES]) if message else status
        failures.append(f"{name}: {status}: {shown}")
    return failures


def run_dbt(args: list[str], *, database_url: str | None = None) -> None:
    """Run one dbt command (e.g. `["build", "--select", "marts"]`) against the warehouse.

    Raises KlinehouseError naming the failed models and tests.
    """
    if not args:
        raise KlinehouseError("run_dbt needs a dbt command, e.g. ['build']")
    env = dbt_env(database_url)
    Path(env["DBT_TARGET_PATH"]).mkdir(parents=True, exist_ok=True)
    from dbt.cli.main import dbtRunner  # ~4 s of imports: only when dbt actually runs

    with _LOCK, temporary_environ(env):
        outcome = dbtRunner().invoke(list(args))
    if outcome.success:
        if args[0] in _WRITES_MARTS:
            _announce_marts(database_url)
        return
    command = " ".join(args[:1])
    if outcome.exception is not None:
        reason = str(outcome.exception).strip().splitlines()
        shown = redact.mask(reason[0]) if reason else type(outcome.exception).__name__
        raise KlinehouseError(f"dbt {command} failed: {shown}") from outcome.exception
    failures = _describe_failures(outcome.result)
    if not failures:
        raise KlinehouseError(f"dbt {command} failed (see dbt's output above)")
    shown = redact.mask("; ".join(failures[:5]))
    more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
    raise KlinehouseError(f"dbt {command} failed on {len(failures)} node(s): {shown}{more}")


def _announce_marts(database_url: str | None) -> None:
    from klinehouse import channels, db

    with db.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_notify(%s, '')", (channels.MARTS,))


def parse_manifest(database_url: str | None = None) -> Path:
    """`dbt parse`: write manifest.json (for cosmos' LoadMode.DBT_MANIFEST); returns its path."""
    run_dbt(["parse"], database_url=database_url)
    return manifest_path()
