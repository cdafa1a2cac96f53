"""`klinehouse airflow`: Airflow standalone on the session's stack, its UI/API, and a clean Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from klinehouse.settings import Settings
from klinehouse.stack._proc import free_port, pid_alive

BOOT_TIMEOUT = 240.0


def _get(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
        return json.loads(r.read())


def _token(base: str, airflow_home: Path) -> str:
    passwords = json.loads(
        (airflow_home / "simple_auth_manager_passwords.json.generated").read_text()
    )
    body = json.dumps({"username": "admin", "password": passwords["admin"]}).encode()
    request = urllib.request.Request(
        f"{base}/auth/token", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as r:
        return str(json.loads(r.read())["access_token"])


def _wait(what: str, check: Any, deadline: float, log: Path) -> Any:
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (OSError, urllib.error.URLError, KeyError, ValueError) as exc:
            last = exc
        time.sleep(2)
    pytest.fail(f"{what} not reached ({last}); log tail:\n{log.read_text()[-3000:]}")


def _group_members(pgid: int) -> list[int]:
    members = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and pid_alive(int(proc.name)):
                members.append(int(proc.name))
    return members


@pytest.mark.slow
def test_airflow_standalone_serves_the_dags_and_stops_on_ctrl_c(
    stack: Settings, airflow_env: dict[str, str], dbt_manifest: Path, tmp_path: Path
) -> None:
    port = free_port(18793)
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "airflow.log"
    klinehouse = Path(sys.executable).parent / "klinehouse"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(klinehouse), "airflow", "--port", str(port)],
            env={**os.environ},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    pgid = 0
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT
        match = _wait(
            "the standalone pid line",
            lambda: re.search(r"airflow standalone: pid (\d+)", log.read_text()),
            deadline,
            log,
        )
        pgid = int(match.group(1))
        health = _wait(
            "a healthy scheduler",
            lambda: (
                (h := _get(f"{base}/api/v2/monitor/health"))["scheduler"]["status"] == "healthy"
                and h
            ),
            deadline,
            log,
        )
        assert health["metadatabase"]["status"] == "healthy"
        token = _token(base, Path(os.environ["AIRFLOW_HOME"]))
        dags = _wait(
            "the three DAGs parsed",
            lambda: (d := _get(f"{base}/api/v2/dags", token))["total_entries"] >= 3 and d,
            deadline,
            log,
        )
        assert {d["dag_id"] for d in dags["dags"]} >= {
            "klines_extract_load",
            "klines_transform",
            "model_training",
        }
        assert all(d["is_paused"] for d in dags["dags"])
        assert _get(f"{base}/api/v2/importErrors", token)["total_entries"] == 0
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            if pgid:
                os.killpg(pgid, signal.SIGKILL)
            pytest.fail(f"klinehouse airflow did not stop on SIGINT:\n{log.read_text()[-3000:]}")
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert "stopping Airflow" in log.read_text()
    deadline = time.monotonic() + 30
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _group_members(pgid) == [], "scheduler/api-server/workers orphaned"
