"""`klinehouse stack up|down|status|env`: start, stop and describe the embedded stack.

The state of a running stack is kept in `<home>/stack.json` (mode 0600: it holds
the generated local passwords). Parts given through `KLINEHOUSE_DATABASE_URL` or
`KLINEHOUSE_S3_ENDPOINT_URL` are external: used as given, never started or stopped.
The cluster's superuser administers it only; the settings handed out are the owner's
(not a superuser), klinehouse_loader's and klinehouse_reader's URLs.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from devstack.stack import postgres, s3
from klinehouse import paths
from klinehouse.errors import KlinehouseError
from klinehouse.settings import environment_settings

READER_ROLE = "klinehouse_reader"
LOADER_ROLE = "klinehouse_loader"


class StackError(KlinehouseError):
    """A part of the stack could not be started or stopped; the message says which and why."""


def _state_path(home: Path) -> Path:
    return home / "stack.json"


def load_state(home: Path | None = None) -> dict[str, Any]:
    try:
        return dict(json.loads(_state_path(home or paths.home()).read_text()))
    except (OSError, ValueError):
        return {}


def _save_state(home: Path, state: dict[str, Any]) -> None:
    path = _state_path(home)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(state, fh, indent=2)
    tmp.replace(path)


def _prepare_home(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    # The server runs as another user when we are root: it must be able to traverse home.
    home.chmod(0o755)
    gitignore = home / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("*\n")


def _owner_of(passwords: dict[str, str]) -> tuple[str, str]:
    """(superuser, owner) of the cluster: a state without an owner password is of a cluster
    initialised before the owner was split off, whose superuser owns the warehouse."""
    if "owner" in passwords:
        return postgres.SUPERUSER, postgres.OWNER
    return postgres.LEGACY_SUPERUSER, postgres.LEGACY_SUPERUSER


def _bootstrap_database(instance: postgres.PostgresInstance, passwords: dict[str, str]) -> None:
    """As the superuser: the owner (not a superuser), its database and the two login roles.

    The owner may create databases (the test suite clones a template) and is a member of
    both roles (to SET ROLE to them); pg_signal_backend lets it drop its databases WITH
    (FORCE) over loader sessions, pg_read_all_settings lets migration 0001 read
    shared_preload_libraries. Creating roles is the administrator's: the owner has no
    CREATEROLE.
    """
    import psycopg
    from psycopg import sql

    superuser, owner = _owner_of(passwords)
    postgres.wait_ready(instance.url_as(superuser, instance.password, "postgres"))
    with psycopg.connect(
        instance.url_as(superuser, instance.password, "postgres"), autocommit=True
    ) as conn:

        def login_role(role: str, password: str, attributes: str) -> None:
            present = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = "ALTER" if present else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} LOGIN " + attributes + " PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )

        if owner != superuser:
            login_role(owner, passwords["owner"], "NOSUPERUSER CREATEDB NOCREATEROLE")
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (postgres.DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(postgres.DATABASE), sql.Identifier(owner)
                )
            )
        for role in (LOADER_ROLE, READER_ROLE):
            login_role(role, passwords[role], "")
        if owner != superuser:
            conn.execute(
                sql.SQL("GRANT {}, {}, pg_signal_backend, pg_read_all_settings TO {}").format(
                    sql.Identifier(LOADER_ROLE), sql.Identifier(READER_ROLE), sql.Identifier(owner)
                )
            )


def admin_url(home: Path | None = None, database: str = "postgres") -> str | None:
    """The embedded cluster's superuser URL (administration only), None when there is none.

    An `up` pointed at an external database (`external`) keeps the record of the cluster an
    earlier `up` started, so that cluster is still ours to administer.
    """
    pg_state = load_state(home or paths.home()).get("postgres") or {}
    passwords = pg_state.get("passwords") or {}
    if "superuser" not in passwords or "port" not in pg_state:
        return None
    superuser, _ = _owner_of(passwords)
    return (
        f"postgresql://{superuser}:{passwords['superuser']}@127.0.0.1:{pg_state['port']}/{database}"
    )


def stack_up(home: Path | None = None, *, migrate: bool = True) -> dict[str, Any]:
    """Bring the stack up (a no-op for parts that already run) and return its state."""
    home = home or paths.home()
    _prepare_home(home)
    state = load_state(home)
    settings_out: dict[str, str] = {}

    environment = environment_settings()
    external_db = environment.database_url
    if external_db:
        # Keep the record of a cluster an earlier `up` started: `down` still stops it.
        state["postgres"] = {**(state.get("postgres") or {}), "external": True}
    else:
        pg_state = state.get("postgres") or {}
        passwords = pg_state.get("passwords") or {
            "superuser": secrets.token_urlsafe(18),
            "owner": secrets.token_urlsafe(18),
            LOADER_ROLE: secrets.token_urlsafe(18),
            READER_ROLE: secrets.token_urlsafe(18),
        }
        try:
            instance = postgres.start(
                home,
                passwords["superuser"],
                int(environment.stack_pg_port or postgres.DEFAULT_PORT),
                superuser=_owner_of(passwords)[0],
            )
            _bootstrap_database(instance, passwords)
        except (postgres.PostgresError, OSError) as exc:
            raise StackError(f"PostgreSQL: {exc}") from exc
        state["postgres"] = {
            "external": False,
            "datadir": str(instance.datadir),
            "port": instance.port,
            "run_as": instance.run_as,
            "passwords": passwords,
        }
        owner = _owner_of(passwords)[1]
        settings_out["database_url"] = instance.url_as(
            owner, passwords.get("owner", passwords["superuser"])
        )
        settings_out["reader_database_url"] = instance.url_as(READER_ROLE, passwords[READER_ROLE])
        settings_out["loader_database_url"] = instance.url_as(LOADER_ROLE, passwords[LOADER_ROLE])

    external_s3 = environment.s3_endpoint_url
    if external_s3:
        state["s3"] = {**(state.get("s3") or {}), "external": True}
    else:
        s3_state = state.get("s3") or {}
        pid = s3_state.get("pid")
        if pid and s3.is_ours(pid):
            port = int(s3_state["port"])
        else:
            try:
                started = s3.start(home, int(environment.stack_s3_port or s3.DEFAULT_PORT))
            except s3.S3Error as exc:
                raise StackError(f"S3: {exc}") from exc
            pid, port = started.pid, started.port
        state["s3"] = {"external": False, "pid": pid, "port": port}
        endpoint = f"http://127.0.0.1:{port}"
        settings_out["s3_endpoint_url"] = endpoint
        settings_out["s3_access_key_id"] = s3.ACCESS_KEY
        settings_out["s3_secret_access_key"] = s3.SECRET_KEY

    state["settings"] = settings_out
    _save_state(home, state)

    from klinehouse.settings import get_settings

    settings = get_settings(fresh=True)
    if not external_s3:
        s3.ensure_bucket(settings_out["s3_endpoint_url"], settings.lake_bucket)
    if migrate:
        from klinehouse.migrate import upgrade

        upgrade(settings.require_database_url())
    return state


def stack_down(home: Path | None = None) -> list[str]:
    """Stop exactly what `stack_up` started; returns what was stopped."""
    home = home or paths.home()
    state = load_state(home)
    stopped: list[str] = []
    # Whatever an `up` started is recorded (datadir, pid), also when a later `up` was
    # pointed at external parts; stop() checks that it still runs and is ours.
    pg_state = state.get("postgres") or {}
    if pg_state.get("datadir") and postgres.stop(Path(pg_state["datadir"])):
        stopped.append(f"postgresql on 127.0.0.1:{pg_state.get('port')}")
    s3_state = state.get("s3") or {}
    if s3_state.get("pid"):
        if s3.stop(int(s3_state["pid"])):
            stopped.append(f"s3 (moto) on 127.0.0.1:{s3_state.get('port')}")
        s3_state.pop("pid", None)
    state["settings"] = {}
    if state:
        _save_state(home, state)
    return stopped


def stack_status(home: Path | None = None) -> list[tuple[str, str, str]]:
    """(component, where, state) rows for `klinehouse stack status`."""
    home = home or paths.home()
    state = load_state(home)
    rows: list[tuple[str, str, str]] = []
    pg_state = state.get("postgres") or {}
    environment = environment_settings()
    if environment.database_url or pg_state.get("external"):
        rows.append(("postgresql", "KLINEHOUSE_DATABASE_URL", "external"))
    elif pg_state.get("datadir"):
        datadir = Path(pg_state["datadir"])
        try:
            running = postgres.is_running(postgres.find_bindir(), datadir, pg_state.get("run_as"))
        except postgres.PostgresError:
            running = False
        where = f"127.0.0.1:{postgres.running_port(datadir) or pg_state.get('port')} ({datadir})"
        rows.append(("postgresql", where, "running" if running else "stopped"))
    else:
        rows.append(("postgresql", "-", "not initialised"))
    s3_state = state.get("s3") or {}
    if environment.s3_endpoint_url or s3_state.get("external"):
        rows.append(("s3", "KLINEHOUSE_S3_ENDPOINT_URL", "external"))
    else:
        pid = s3_state.get("pid")
        running = pid is not None and s3.is_ours(int(pid))
        where = f"127.0.0.1:{s3_state.get('port')} (moto, in memory)" if running else "-"
        rows.append(("s3", where, f"running (pid {pid})" if running else "stopped"))
    return rows


def stack_env(home: Path | None = None) -> str:
    """`export KLINEHOUSE_…=` lines for the running stack (empty when nothing runs)."""
    import shlex

    settings_out = load_state(home or paths.home()).get("settings") or {}
    return "".join(
        f"export KLINEHOUSE_{key.upper()}={shlex.quote(str(value))}\n"
        for key, value in sorted(settings_out.items())
    )
