"""`klinehouse airflow`: Airflow standalone on the session's stack, its UI/API, and a clean Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devstack.stack._proc import free_port, pid_alive
from klinehouse.settings import Settings

BOOT_TIMEOUT = 240.0


def _get(url: str, token: str | None = None, *, method: str = "GET", body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as r:
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


def _listening_addresses(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp{,6} spell them) listening on `port`."""
    found = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


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
def test_airflow_standalone_runs_the_dags_and_stops_on_ctrl_c(
    stack: Settings,
    airflow_env: dict[str, str],
    dbt_manifest: Path,
    database_url: str,
    lake_settings: Settings,
    shared_data: Path,
    tmp_path: Path,
) -> None:
    """`klinehouse airflow --standin`: the UI's API lists the DAGs; a triggered extract-load
    run goes through the scheduler and the LocalExecutor's workers into raw; Ctrl-C stops all."""
    port = free_port(18793)
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "airflow.log"
    klinehouse = Path(sys.executable).parent / "klinehouse"
    with log.open("wb") as out:
        env = {
            **os.environ,
            "KLINEHOUSE_DATABASE_URL": database_url,
            "KLINEHOUSE_LAKE_URI": lake_settings.lake_uri,
            "KLINEHOUSE_TASK_RETRIES": "0",  # a failure shows at once, not after backoff
        }
        env.pop("AIRFLOW_CONN_KLINEHOUSE_WAREHOUSE", None)  # derived again from the URL above
        proc = subprocess.Popen(
            [str(klinehouse), "airflow", "--port", str(port), "--standin"],
            env=env,
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
        # the API server binds loopback only (127.0.0.1), not Airflow's default 0.0.0.0
        assert _listening_addresses(port) == {"0100007F"}
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

        # one day of BTCUSDT and ETHUSDT through the scheduler and the executor's workers
        dag_url = f"{base}/api/v2/dags/klines_extract_load"
        _get(dag_url, token, method="PATCH", body={"is_paused": False})
        run = _get(
            f"{dag_url}/dagRuns",
            token,
            method="POST",
            body={
                "logical_date": None,
                "conf": {"start": "2025-02-01T00:00:00Z", "end": "2025-02-02T00:00:00Z"},
            },
        )
        finished = _wait(
            "the triggered run to finish",
            lambda: (
                (r := _get(f"{dag_url}/dagRuns/{run['dag_run_id']}", token))["state"]
                in {"success", "failed"}
                and r
            ),
            time.monotonic() + BOOT_TIMEOUT,
            log,
        )
        assert finished["state"] == "success"
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT symbol, count(*) FROM raw.binance_klines WHERE open_time >= %s"
                " AND open_time < %s GROUP BY symbol ORDER BY symbol",
                (datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 2, 2, tzinfo=UTC)),
            ).fetchall()
        assert rows == [("BTCUSDT", 24), ("ETHUSDT", 24)]
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
