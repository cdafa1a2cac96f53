"""`klinehouse stream` as a process: /healthz while running, SIGTERM commits everything received."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from devstack.standin.binance_ws import (
    GARBAGE_PER_TICK,
    Scenario,
    StandinThread,
    archive_candles,
    generated_timeline,
)
from extract.lake_store import prefix_object_keys, read_objects
from klinehouse.settings import Settings

CANDLES = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthz(port: int) -> tuple[int, dict[str, Any]] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return None


def _wait_health(
    port: int, proc: subprocess.Popen[str], until: Any, timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"ingester exited early: {proc.communicate()}"
        got = _healthz(port)
        if got is not None:
            last = got
            if until(*got):
                return got[1]
        time.sleep(0.1)
    raise AssertionError(f"health never reached the expected state; last {last}")


def test_sigterm_commits_everything_received_and_exits_0(
    warehouse: Settings, shared_data: Path
) -> None:
    archive = shared_data / "binance/spot-archive"
    series = [
        archive_candles(archive / f"{s}-1h-2024-11.csv", symbol=s, interval="1h")[:CANDLES]
        for s in ("BTCUSDT", "ETHUSDT")
    ]
    scenario = Scenario(generated_timeline(series, updates=3), garbage={5})
    port = _free_port()
    with StandinThread(scenario) as standin:
        env = {**os.environ, "KLINEHOUSE_BINANCE_WS_URL": standin.url}
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "stream", "--symbol", "BTCUSDT",
             "--symbol", "ethusdt", "--interval", "1h",
             # nothing is due before the signal: everything received sits in the buffer
             "--flush-rows", "100000", "--flush-seconds", "3600",
             "--health-port", str(port), "--health-host", "127.0.0.1"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            body = _wait_health(
                port,
                proc,
                lambda status, b: b["closed_candles"] == 2 * CANDLES and status == 200,
                timeout=60,
            )
            assert body["connected"] is True and body["committed"] == 0
            assert body["buffered"] == 2 * CANDLES
            assert body["malformed"] == GARBAGE_PER_TICK
            assert body["last_message_age_seconds"] is not None and body["last_flush_at"] is None
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["committed"] == summary["inserted"] == 2 * CANDLES
    assert summary["malformed"] == {"not_json": 1, "malformed": 1}

    with psycopg.connect(warehouse.database_url) as conn:
        rows = conn.execute(
            "SELECT symbol, open_time, open, high, low, close, volume, trades, source"
            " FROM raw.binance_klines ORDER BY symbol, open_time"
        ).fetchall()
    expected = sorted(
        (c.symbol, c.open_ms, Decimal(c.open), Decimal(c.high), Decimal(c.low),
         Decimal(c.close), Decimal(c.volume), c.trades, "stream")
        for s in series for c in s
    )  # fmt: skip
    assert sorted((r[0], int(r[1].timestamp() * 1000), *r[2:]) for r in rows) == expected
    lake = read_objects(prefix_object_keys("klines/market=spot", warehouse), warehouse)
    assert lake.height == 2 * CANDLES
