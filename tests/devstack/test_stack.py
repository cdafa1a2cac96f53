"""The embedded stack: idempotent up, exact down, recovery, external parts and clear errors."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg
import pytest

from devstack.stack import manager, postgres
from devstack.stack._proc import pid_alive
from klinehouse import paths
from klinehouse.settings import Settings


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A second, throw-away stack home (the session stack stays untouched)."""
    root = paths.REPO_ROOT / ".klinehouse"
    root.mkdir(exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="test-own-", dir=root))
    path.chmod(0o755)  # as `stack up` leaves it: the server's user must reach it
    for var in ("KLINEHOUSE_DATABASE_URL", "KLINEHOUSE_S3_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KLINEHOUSE_HOME", str(path))
    yield path
    manager.stack_down(path)
    shutil.rmtree(path, ignore_errors=True)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_up_twice_is_a_noop_and_down_stops_everything(home: Path) -> None:
    first = manager.stack_up(home)
    second = manager.stack_up(home)
    assert first["s3"]["pid"] == second["s3"]["pid"]
    assert first["postgres"]["port"] == second["postgres"]["port"]
    datadir = Path(first["postgres"]["datadir"])
    postmaster_pid = int((datadir / "postmaster.pid").read_text().splitlines()[0])

    url = second["settings"]["database_url"]
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'raw' AND table_name = 'binance_klines'"
        ).fetchone()
        assert tables == (1,)
    s3 = boto3.client(
        "s3",
        endpoint_url=second["settings"]["s3_endpoint_url"],
        aws_access_key_id="x",
        aws_secret_access_key="y",
        region_name="us-east-1",
    )
    assert "klinehouse-lake" in {b["Name"] for b in s3.list_buckets()["Buckets"]}

    stopped = manager.stack_down(home)
    assert len(stopped) == 2
    assert not pid_alive(postmaster_pid)
    assert not pid_alive(first["s3"]["pid"])
    assert manager.stack_env(home) == ""


def test_cli_up_up_down_leaves_no_process(home: Path) -> None:
    for _ in range(2):
        result = _cli("stack", "up")
        assert result.returncode == 0, result.stderr
    env_lines = _cli("stack", "env").stdout
    assert "export KLINEHOUSE_DATABASE_URL=" in env_lines
    assert "export KLINEHOUSE_S3_ENDPOINT_URL=" in env_lines
    status = _cli("stack", "status").stdout
    assert status.count("running") == 2
    state = manager.load_state(home)
    datadir = Path(state["postgres"]["datadir"])
    pg_pid = int((datadir / "postmaster.pid").read_text().splitlines()[0])

    down = _cli("stack", "down")
    assert down.returncode == 0, down.stderr
    assert not pid_alive(pg_pid)
    assert not pid_alive(state["s3"]["pid"])
    assert _cli("stack", "status").stdout.count("stopped") == 2


def test_half_initialised_datadir_is_recovered_and_data_kept(home: Path) -> None:
    state = manager.stack_up(home)
    url = state["settings"]["database_url"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.keep_me (x int)")
        conn.execute("INSERT INTO public.keep_me VALUES (42)")
    datadir = Path(state["postgres"]["datadir"])
    # A killed server (stale postmaster.pid) and a killed initdb (leftover staging dir).
    pid = int((datadir / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, 9)
    staging = datadir.with_name(datadir.name + ".initdb")
    staging.mkdir()
    (staging / "garbage").write_text("half written")

    again = manager.stack_up(home)
    with psycopg.connect(again["settings"]["database_url"]) as conn:
        assert conn.execute("SELECT x FROM public.keep_me").fetchone() == (42,)


def test_uninitialised_datadir_is_reinitialised(home: Path) -> None:
    user = postgres._run_as_user()
    datadir = postgres.server_root(home, user) / "data"
    assert datadir.parent == home / "postgres"  # the folder stack_up will use
    datadir.mkdir()
    (datadir / "postgresql.conf").write_text("# partial\n")
    state = manager.stack_up(home)
    assert (Path(state["postgres"]["datadir"]) / "PG_VERSION").exists()


def test_taken_port_is_avoided(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    monkeypatch.setenv("KLINEHOUSE_STACK_PG_PORT", str(taken))
    monkeypatch.setenv("KLINEHOUSE_STACK_S3_PORT", str(taken))
    try:
        state = manager.stack_up(home)
        assert state["postgres"]["port"] != taken
        assert state["s3"]["port"] != taken
        with psycopg.connect(state["settings"]["database_url"]) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        blocker.close()


def test_external_parts_are_used_as_given(
    home: Path, stack: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", stack.require_database_url())
    monkeypatch.setenv("KLINEHOUSE_S3_ENDPOINT_URL", stack.s3_endpoint_url)
    state = manager.stack_up(home, migrate=False)
    assert state["postgres"] == {"external": True}
    assert state["s3"] == {"external": True}
    assert not (home / "postgres" / "data").exists()
    assert [row[2] for row in manager.stack_status(home)] == ["external", "external"]


def test_down_stops_what_up_started_after_an_external_up(
    home: Path, stack: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later `up` pointed at external parts (a tool run with KLINEHOUSE_DATABASE_URL set
    in the same home) must not make `down` forget the cluster and S3 it started."""
    local = manager.stack_up(home, migrate=False)
    datadir = Path(local["postgres"]["datadir"])
    pg_pid = int((datadir / "postmaster.pid").read_text().splitlines()[0])
    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", stack.require_database_url())
    monkeypatch.setenv("KLINEHOUSE_S3_ENDPOINT_URL", stack.s3_endpoint_url)
    manager.stack_up(home, migrate=False)
    assert len(manager.stack_down(home)) == 2
    assert not pid_alive(pg_pid)
    assert not pid_alive(local["s3"]["pid"])


def test_unreachable_database_is_one_line_naming_host_and_port(home: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _cli(
        "db",
        "upgrade",
        env={"KLINEHOUSE_DATABASE_URL": f"postgresql://u:p@127.0.0.1:{port}/nowhere"},
    )
    assert result.returncode == 2
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_private_stack_of_a_killed_run_is_reaped() -> None:
    """A run killed outright leaves its stack running; the next private stack stops it."""
    from devstack.stack.private import reap_orphans

    script = (
        "import os\n"
        "from devstack.stack.private import private_stack\n"
        "with private_stack('test-orphan-') as s:\n"
        "    print(os.environ['KLINEHOUSE_HOME'], flush=True)\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == -9, run.stderr
    home = Path(run.stdout.strip().splitlines()[-1])
    state = manager.load_state(home)
    datadir = Path(state["postgres"]["datadir"])
    pg_pid = int((datadir / "postmaster.pid").read_text().splitlines()[0])
    s3_pid = int(state["s3"]["pid"])
    assert pid_alive(pg_pid) and pid_alive(s3_pid)  # left behind by the killed run

    assert home in reap_orphans(home.parent)
    assert not pid_alive(pg_pid)
    assert not pid_alive(s3_pid)
    assert not home.exists()


def test_fallback_server_root_is_the_same_in_every_process(tmp_path: Path) -> None:
    """Where the server user cannot reach home, the cluster lives in a temp folder whose
    name must not change between processes (else the next `stack up` loses the data)."""
    user = postgres._run_as_user()
    if user is None:
        pytest.skip("not root: the server runs as this user and reaches any home")
    unreachable = tmp_path / "private"
    unreachable.mkdir(mode=0o700)  # tmp_path itself is root-only as well
    code = (
        "import sys; from pathlib import Path; from devstack.stack import postgres; "
        "print(postgres.server_root(Path(sys.argv[1]), postgres._run_as_user()))"
    )
    roots = {
        subprocess.run(
            [sys.executable, "-c", code, str(unreachable)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(roots) == 1
    root = roots.pop()
    assert not root.startswith(str(unreachable))
    shutil.rmtree(root, ignore_errors=True)


def test_owner_is_not_a_superuser_and_the_stack_hands_out_loader_and_reader_urls(
    stack: Settings,
) -> None:
    def who(url: str) -> tuple[str, bool, bool]:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT current_user, rolsuper, rolcreaterole FROM pg_roles"
                " WHERE rolname = current_user"
            ).fetchone()
        assert row is not None
        return str(row[0]), bool(row[1]), bool(row[2])

    assert who(stack.require_database_url()) == (postgres.OWNER, False, False)
    assert who(stack.loader_url()) == (manager.LOADER_ROLE, False, False)
    assert who(stack.reader_url()) == (manager.READER_ROLE, False, False)
    admin = manager.admin_url()
    assert admin is not None
    assert who(admin) == (postgres.SUPERUSER, True, True)
    # the passwords are generated and kept in the stack's state, never in the repository
    state = manager.load_state()
    assert set(state["postgres"]["passwords"]) == {
        "superuser",
        "owner",
        manager.LOADER_ROLE,
        manager.READER_ROLE,
    }
    assert (paths.home() / "stack.json").stat().st_mode & 0o077 == 0


def test_stack_role_urls_are_not_used_for_a_database_the_environment_names(
    stack: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stack's loader/reader URLs name its own database: with KLINEHOUSE_DATABASE_URL
    pointing elsewhere they would load into the wrong database."""
    from klinehouse.settings import get_settings

    elsewhere = stack.require_database_url().rsplit("/", 1)[0] + "/elsewhere"
    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", elsewhere)
    try:
        settings = get_settings(fresh=True)
        assert settings.loader_url() == elsewhere
        assert settings.reader_url() == elsewhere
    finally:
        monkeypatch.delenv("KLINEHOUSE_DATABASE_URL")
        get_settings(fresh=True)


def test_a_cluster_initialised_before_the_owner_split_keeps_its_superuser_as_owner() -> None:
    """Its state has no owner password and its initdb superuser is `klinehouse`: a later
    `up` must log in as that role, not as a klinehouse_admin the cluster never had."""
    legacy = {"superuser": "pw", manager.LOADER_ROLE: "l", manager.READER_ROLE: "r"}
    assert manager._owner_of(legacy) == (postgres.LEGACY_SUPERUSER, postgres.LEGACY_SUPERUSER)
    assert manager._owner_of({**legacy, "owner": "o"}) == (postgres.SUPERUSER, postgres.OWNER)
