"""A throw-away stack of its own, for test sessions and benchmarks.

It lives in a fresh folder under `.klinehouse/` with ports of its own, ignores
any configured external database or S3, and is stopped and removed on exit, so
that a benchmark never touches the user's stack and parallel runs never collide.
A run killed outright (SIGKILL, a CI timeout) cannot clean up: the next private
stack stops and removes those whose owning process is gone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack.stack._proc import pid_alive
from devstack.stack.manager import stack_down, stack_up
from klinehouse import paths
from klinehouse.envvars import temporary_environ
from klinehouse.settings import Settings, get_settings

# Settings that would point a private stack elsewhere: unset inside it.
_POINTING_ELSEWHERE = (
    "KLINEHOUSE_DATABASE_URL",
    "KLINEHOUSE_READER_DATABASE_URL",
    "KLINEHOUSE_LOADER_DATABASE_URL",
    "KLINEHOUSE_S3_ENDPOINT_URL",
    "KLINEHOUSE_LAKE_URI",
    "KLINEHOUSE_GRPC_TOKEN",
    "KLINEHOUSE_GRPC_TLS_CERT",
    "KLINEHOUSE_GRPC_TLS_KEY",
    "DBT_TARGET_PATH",
)


_OWNER_FILE = "owner.pid"


@contextmanager
def private_stack(prefix: str = "private-", *, migrate: bool = True) -> Iterator[Settings]:
    """Start a fresh stack; inside, `get_settings()` describes it. Yields those settings."""
    root = paths.REPO_ROOT / ".klinehouse"
    root.mkdir(exist_ok=True)
    root.chmod(0o755)  # the server may run as another user, who must traverse it
    reap_orphans(root)
    home = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    (home / _OWNER_FILE).write_text(f"{os.getpid()}\n")
    overrides: dict[str, str | None] = dict.fromkeys(_POINTING_ELSEWHERE)
    overrides["KLINEHOUSE_HOME"] = str(home)
    try:
        with temporary_environ(overrides):
            try:
                stack_up(home, migrate=migrate)
                yield get_settings(fresh=True)
            finally:
                stack_down(home)
    finally:
        get_settings(fresh=True)
        shutil.rmtree(home, ignore_errors=True)


def reap_orphans(root: Path) -> list[Path]:
    """Stop and remove the private stacks under `root` whose owning process is gone."""
    reaped = []
    for owner_file in root.glob(f"*/{_OWNER_FILE}"):
        try:
            pid = int(owner_file.read_text())
        except (OSError, ValueError):
            continue
        if pid_alive(pid):
            continue
        home = owner_file.parent
        stack_down(home)
        shutil.rmtree(home, ignore_errors=True)
        reaped.append(home)
    return reaped
