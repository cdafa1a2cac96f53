"""Outages of a private stack's own PostgreSQL and moto S3, for the fault tests.

Each function acts on the stack whose KLINEHOUSE_HOME is `home` (a `private_stack`,
never the session's stack): PostgreSQL stops and starts again on the same port and
data directory; moto stops and starts again on the same port. moto keeps objects in
memory only, where a real S3 keeps them: `s3_snapshot` reads what the bucket held
before it went away.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from klinehouse.settings import Settings


def in_fresh_interpreter(function: str, *args: str) -> None:
    """Call `function(*args)` of this module in a new Python process.

    pg_ctl runs as another user (as root), so subprocess forks rather than vforks;
    in a test process where gRPC threads run (a server fixture), gRPC's fork handlers
    then crash the child ("Other threads are currently calling into gRPC, skipping
    fork() handlers", then a segfault). A fresh interpreter has no gRPC loaded."""
    code = f"import sys; from tests.faults import {function}; {function}(*sys.argv[1:])"
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{function}{args}: {result.stderr[-2000:]}"


def stop_postgres(home: Path) -> None:
    """Stop the stack's PostgreSQL (`pg_ctl stop -m fast`: sessions are cut)."""
    in_fresh_interpreter("_stop_postgres", str(home))


def start_postgres(home: Path) -> None:
    """Start it again on the same port and data directory."""
    in_fresh_interpreter("_start_postgres", str(home))


def _stop_postgres(home: Path | str) -> None:
    from devstack.stack import manager, postgres

    datadir = Path(manager.load_state(Path(home))["postgres"]["datadir"])
    assert postgres.stop(datadir), "PostgreSQL was not running"


def _start_postgres(home: Path | str) -> None:
    from devstack.stack import manager, postgres

    home = Path(home)
    state = manager.load_state(home)
    port = int(state["postgres"]["port"])
    started = postgres.start(home, state["postgres"]["passwords"]["superuser"], port)
    assert started.port == port, "PostgreSQL came back on another port"


def stop_s3(home: Path) -> None:
    from devstack.stack import manager, s3

    assert s3.stop(int(manager.load_state(home)["s3"]["pid"])), "moto was not running"


def start_s3(home: Path, bucket: str) -> None:
    from devstack.stack import manager, s3

    state = manager.load_state(home)
    port = int(state["s3"]["port"])
    started = s3.start(home, port)
    state["s3"]["pid"] = started.pid  # so that the stack's `down` stops this one
    manager._save_state(home, state)
    assert started.port == port, "S3 came back on another port"
    s3.ensure_bucket(f"http://127.0.0.1:{port}", bucket)


def s3_snapshot(settings: Settings) -> dict[str, bytes]:
    """Every object of the lake bucket (moto forgets them when it stops)."""
    from klinehouse import lake

    client = lake.s3_client(settings)
    bucket = settings.lake_bucket
    keys = [
        obj["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for obj in page.get("Contents", [])
    ]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(0.02)
