"""PostgreSQL of the local stack: found on the machine, initialised once, run unprivileged.

`initdb` and `postgres` refuse to run as root, so as root the server runs as the
`postgres` user (or a `klinehouse` system user created for it). A data directory
is initialised under a temporary name and renamed only when complete, so a
killed `stack up` never leaves a half-initialised cluster behind.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.stack._proc import free_port, pid_alive, port_holder, port_is_free

DEFAULT_PORT = 54329
# initdb's superuser: used only to administer the cluster (create the owner, the database and
# the login roles). The warehouse is owned and migrated by OWNER, which is not a superuser.
SUPERUSER = "klinehouse_admin"
LEGACY_SUPERUSER = "klinehouse"  # clusters initialised before the owner was split off
OWNER = "klinehouse"
DATABASE = "klinehouse"


class PostgresError(RuntimeError):
    """The local PostgreSQL could not be found, initialised or started; the message says why."""


@dataclass(frozen=True)
class PostgresInstance:
    bindir: Path
    datadir: Path
    port: int
    password: str
    run_as: str | None
    superuser: str = SUPERUSER

    @property
    def url(self) -> str:
        """The superuser's URL of the warehouse database (administration only)."""
        return self.url_as(self.superuser, self.password)

    def url_as(self, user: str, password: str, database: str = DATABASE) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"


def find_bindir() -> Path:
    """The directory holding `initdb`, `pg_ctl` and `postgres`.

    Looks at `pg_config --bindir`, `initdb` on PATH, `/usr/lib/postgresql/*/bin`
    (newest first) and the `pgserver` wheel's bundled binaries.
    """
    candidates: list[Path] = []
    from klinehouse.settings import get_settings

    if env_dir := get_settings(fresh=True).pg_bindir:
        candidates.append(Path(env_dir))
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            )
            candidates.append(Path(out.stdout.strip()))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(Path(p) for p in versions)
    with contextlib.suppress(ImportError):
        import pgserver  # type: ignore[import-not-found]

        candidates.append(Path(pgserver.__file__).parent / "pginstall" / "bin")
    for cand in candidates:
        if all((cand / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return cand
    raise PostgresError(
        "no PostgreSQL server binaries found (looked at pg_config, initdb on PATH, "
        "/usr/lib/postgresql/*/bin): install the postgresql server package, "
        "or `pip install pgserver`, or set KLINEHOUSE_DATABASE_URL to an existing server"
    )


def _run_as_user() -> str | None:
    """None when we may run the server ourselves, else the unprivileged user to run it as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "klinehouse"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "klinehouse"],
        check=True,
        capture_output=True,
    )
    return "klinehouse"


def _run(cmd: list[str], user: str | None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    if user is not None:
        pw = pwd.getpwnam(user)
        kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        kwargs.setdefault("cwd", "/")
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload,no-any-return]


def _chown(path: Path, user: str | None) -> None:
    if user is not None:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _reachable(path: Path, user: str | None) -> bool:
    return user is None or _run(["test", "-w", str(path)], user).returncode == 0


def server_root(home: Path, user: str | None) -> Path:
    """Where the cluster lives: `<home>/postgres`, or a private temp folder when the run-as
    user cannot reach `home` (a checkout under /root, say)."""
    root = home / "postgres"
    root.mkdir(parents=True, exist_ok=True)
    _chown(root, user)
    if _reachable(root, user):
        return root
    # Stable across processes (str hashes are randomised per process): the next `stack up`
    # must find the same cluster.
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:12]
    fallback = Path(tempfile.gettempdir()) / f"klinehouse-pg-{digest}"
    fallback.mkdir(exist_ok=True)
    _chown(fallback, user)
    (root / "LOCATION").write_text(f"{fallback}\n")
    return fallback


def _write_conf(datadir: Path, port: int, socket_dir: Path, bindir: Path, user: str | None) -> None:
    extra = []
    pkglib = _pkglibdir(bindir)
    if pkglib and (pkglib / "timescaledb.so").exists():
        extra.append("shared_preload_libraries = 'timescaledb'")
        extra.append("timescaledb.telemetry_level = off")
    conf = "\n".join(
        [
            "# Written by `klinehouse stack up` on every start.",
            "listen_addresses = '127.0.0.1'",
            f"port = {port}",
            f"unix_socket_directories = '{socket_dir}'",
            "max_connections = 200",
            "shared_buffers = 256MB",
            "work_mem = 32MB",
            "maintenance_work_mem = 256MB",
            # A development stack: durability against an OS crash is traded for speed. Commits
            # still reach the OS before they return, so a killed server loses nothing.
            "fsync = off",
            "full_page_writes = off",
            "max_wal_size = 2GB",
            "log_min_messages = warning",
            "timezone = 'UTC'",
            *extra,
            "",
        ]
    )
    target = datadir / "klinehouse.conf"
    target.write_text(conf)
    _chown(target, user)


def _pkglibdir(bindir: Path) -> Path | None:
    pg_config = bindir / "pg_config"
    if not pg_config.exists():
        return None
    out = subprocess.run([str(pg_config), "--pkglibdir"], capture_output=True, text=True)
    return Path(out.stdout.strip()) if out.returncode == 0 else None


def _initdb(bindir: Path, datadir: Path, password: str, user: str | None, superuser: str) -> None:
    staging = datadir.with_name(datadir.name + ".initdb")
    if staging.exists():
        shutil.rmtree(staging)  # left by a killed `stack up`: never complete, safe to redo
    with tempfile.NamedTemporaryFile("w", delete=False, dir=datadir.parent) as pwfile:
        pwfile.write(password + "\n")
    pwpath = Path(pwfile.name)
    _chown(pwpath, user)
    try:
        result = _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(staging),
                "-U",
                superuser,
                "--pwfile",
                str(pwpath),
                "--auth-local",
                "scram-sha-256",
                "--auth-host",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            user,
        )
    finally:
        pwpath.unlink(missing_ok=True)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise PostgresError(f"initdb failed:\n{result.stderr.strip()}")
    with (staging / "postgresql.conf").open("a") as conf:
        conf.write("\ninclude_if_exists = 'klinehouse.conf'\n")
    staging.rename(datadir)


def _lock_pid(lock_file: Path) -> int | None:
    try:
        return int(lock_file.read_text().splitlines()[0])
    except (OSError, IndexError, ValueError):
        return None


def _postmaster_pid(datadir: Path) -> int | None:
    return _lock_pid(datadir / "postmaster.pid")


def is_running(bindir: Path, datadir: Path, user: str | None) -> bool:
    if not (datadir / "PG_VERSION").exists():
        return False
    pid = _postmaster_pid(datadir)
    # pg_ctl takes a killed, unreaped postmaster (a zombie) for a running one.
    if pid is None or not pid_alive(pid):
        return False
    return _run([str(bindir / "pg_ctl"), "status", "-D", str(datadir)], user).returncode == 0


def _clear_stale_locks(datadir: Path, socket_dir: Path) -> None:
    """Remove the lock files (postmaster.pid, socket locks) of a dead postmaster: postgres
    itself would refuse to start while a zombie holds the pid they name."""
    for lock_file in [datadir / "postmaster.pid", *socket_dir.glob(".s.PGSQL.*.lock")]:
        pid = _lock_pid(lock_file)
        if pid is not None and not pid_alive(pid):
            lock_file.unlink(missing_ok=True)
            if lock_file.parent == socket_dir:  # the socket the dead postmaster left behind
                Path(str(lock_file).removesuffix(".lock")).unlink(missing_ok=True)


def running_port(datadir: Path) -> int | None:
    """The port of the running postmaster, from line 4 of postmaster.pid."""
    try:
        return int((datadir / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return None


def start(
    home: Path,
    password: str | None,
    preferred_port: int = DEFAULT_PORT,
    superuser: str = SUPERUSER,
) -> PostgresInstance:
    """Initialise (once) and start the cluster; reuse it when it already runs."""
    bindir = find_bindir()
    user = _run_as_user()
    root = server_root(home, user)
    datadir = root / "data"
    socket_dir = root / "run"
    socket_dir.mkdir(exist_ok=True)
    _chown(socket_dir, user)
    password = password or secrets.token_urlsafe(18)

    if not (datadir / "PG_VERSION").exists():
        if datadir.exists():
            # A data folder without PG_VERSION was never initialised; nothing in it to keep.
            shutil.rmtree(datadir)
        _initdb(bindir, datadir, password, user, superuser)

    if is_running(bindir, datadir, user):
        port = running_port(datadir) or preferred_port
        return PostgresInstance(bindir, datadir, port, password, user, superuser)

    _clear_stale_locks(datadir, socket_dir)
    port = free_port(preferred_port)
    if port != preferred_port:
        print(
            f"port {preferred_port} is held by {port_holder(preferred_port)}; PostgreSQL uses {port}"
        )
    _write_conf(datadir, port, socket_dir, bindir, user)
    log = root / "postgres.log"
    if not log.exists():
        log.touch()
        _chown(log, user)
    result = _run(
        [str(bindir / "pg_ctl"), "start", "-D", str(datadir), "-l", str(log), "-w", "-t", "60"],
        user,
        start_new_session=True,
    )
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        if not port_is_free(port):
            raise PostgresError(f"port {port} is held by {port_holder(port)}")
        raise PostgresError(f"PostgreSQL did not start (log {log}):\n{tail}")
    return PostgresInstance(bindir, datadir, port, password, user, superuser)


def stop(datadir: Path) -> bool:
    """Stop the cluster in `datadir`; True when it was running."""
    bindir = find_bindir()
    user = _run_as_user()
    if not is_running(bindir, datadir, user):
        return False
    result = _run(
        [str(bindir / "pg_ctl"), "stop", "-D", str(datadir), "-m", "fast", "-w", "-t", "60"], user
    )
    if result.returncode != 0:
        raise PostgresError(f"pg_ctl stop failed: {result.stderr.strip()}")
    return True


# Crash recovery after a killed server replays its WAL and checkpoints before accepting
# connections: on a disk busy with another job that took over 30 s in a fresh-clone CI run.
READY_TIMEOUT = 90.0


def wait_ready(url: str, timeout: float = READY_TIMEOUT) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=3):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
