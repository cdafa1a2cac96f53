"""Outages of a private stack's own PostgreSQL and moto S3, for the fault tests.

Each function acts on the stack whose KLINEHOUSE_HOME is `home` (a `private_stack`,
never the session's stack): PostgreSQL stops and starts again on the same port and
data directory; moto stops and starts again on the same port. moto keeps objects in
memory only, where a real S3 keeps them: `s3_snapshot` reads what the bucket held
before it went away.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from klinehouse.settings import Settings


def stop_postgres(home: Path) -> None:
    from devstack.stack import manager, postgres

    datadir = Path(manager.load_state(home)["postgres"]["datadir"])
    assert postgres.stop(datadir), "PostgreSQL was not running"


def start_postgres(home: Path) -> None:
    from devstack.stack import manager, postgres

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


def postgres_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False
