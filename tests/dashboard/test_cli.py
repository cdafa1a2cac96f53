"""`klinehouse dashboard` without a reachable database: one line naming it, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

from klinehouse.paths import REPO_ROOT


def test_unreachable_database_is_one_line_without_the_password() -> None:
    env = {
        **os.environ,
        "KLINEHOUSE_DATABASE_URL": "postgresql://reader:s3cret@127.0.0.1:1/warehouse",
        "KLINEHOUSE_READER_DATABASE_URL": "",
        "PYTHONPATH": str(REPO_ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "app", "dashboard", "--port", "1"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("klinehouse: cannot reach PostgreSQL at 127.0.0.1:1/warehouse")
    assert "Traceback" not in done.stderr and "s3cret" not in done.stderr
