"""The CLI never prints a password: a URL psycopg rejects, an unreachable database and an S3
endpoint with credentials each give one masked line and exit 2 (no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

KLINEHOUSE = [sys.executable, "-m", "app"]


def run(tmp_path: Path, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KLINEHOUSE_")}
    return subprocess.run(
        [*KLINEHOUSE, *args],
        env={**clean, "KLINEHOUSE_HOME": str(tmp_path), "AWS_MAX_ATTEMPTS": "1", **env},
        capture_output=True,
        text=True,
        timeout=45,
    )


def assert_one_masked_line(result: subprocess.CompletedProcess[str], *secrets: str) -> str:
    output = result.stdout + result.stderr
    for secret in secrets:
        assert secret not in output, output
    assert result.returncode == 2, output
    assert "Traceback" not in output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("klinehouse: "), output
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [["models", "list"], ["db", "upgrade"], ["serve"], ["validate"], ["train"]],
)
def test_a_database_url_psycopg_rejects_is_shown_masked(tmp_path: Path, command: list[str]) -> None:
    url = "postgresql+psycopg://u:SECRET@127.0.0.1:5432/k"
    result = run(tmp_path, command, KLINEHOUSE_DATABASE_URL=url)
    line = assert_one_masked_line(result, "SECRET")
    assert "postgresql+psycopg://u:***@127.0.0.1:5432/k" in line
    assert "not the SQLAlchemy form" in line


def test_an_unreachable_database_is_one_masked_line(tmp_path: Path) -> None:
    url = "postgresql://u:SECRET@127.0.0.1:1/k?password=SECRET2"
    line = assert_one_masked_line(
        run(tmp_path, ["models", "list"], KLINEHOUSE_DATABASE_URL=url), "SECRET"
    )
    assert "cannot reach PostgreSQL at 127.0.0.1:1/k" in line


def test_an_s3_endpoint_with_credentials_is_shown_masked(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        ["load", "--run", "no-such-run"],
        KLINEHOUSE_DATABASE_URL="postgresql://u:SECRET@127.0.0.1:1/k",
        KLINEHOUSE_S3_ENDPOINT_URL="http://AKIAEXAMPLE:S3SECRET@127.0.0.1:1",
        KLINEHOUSE_S3_ACCESS_KEY_ID="AKIAEXAMPLE",
        KLINEHOUSE_S3_SECRET_ACCESS_KEY="S3SECRETKEY",
    )
    line = assert_one_masked_line(result, "SECRET")
    assert "http://AKIAEXAMPLE:***@127.0.0.1:1" in line and "S3 error" in line
