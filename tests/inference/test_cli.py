"""`klinehouse serve` as a process: the client commands against it, then SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .conftest import TOKEN

KLINEHOUSE = [sys.executable, "-m", "app"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_clients_and_graceful_sigterm(warehouse: tuple[str, str], tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "KLINEHOUSE_DATABASE_URL": warehouse[0],
        "KLINEHOUSE_READER_DATABASE_URL": warehouse[1],
        "KLINEHOUSE_GRPC_ADDRESS": address,
        "KLINEHOUSE_GRPC_TOKEN": TOKEN,
    }
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [*KLINEHOUSE, "serve", "--grace", "2"], env=env, stdout=log, stderr=log
    )
    try:
        with grpc.insecure_channel(address) as ch:
            deadline = time.monotonic() + 60
            while True:
                try:
                    health = health_pb2_grpc.HealthStub(ch).Check(
                        health_pb2.HealthCheckRequest(), timeout=2
                    )
                    if health.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "klinehouse serve did not become healthy"
                time.sleep(0.3)

        def run(*args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*KLINEHOUSE, *args],
                env={**env, "KLINEHOUSE_GRPC_TOKEN": token},
                capture_output=True,
                text=True,
                timeout=60,
            )

        out = run("candles", "BTCUSDT", "--interval", "1h", "--date", "2024-03-01")
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert len(lines) == 24 and lines[0].startswith("BTCUSDT      2024-03-01 00:00:00")
        denied = run("candles", "BTCUSDT", "--date", "2024-03-01", token="wrong")
        assert denied.returncode == 2 and "UNAUTHENTICATED" in denied.stderr
        assert "Traceback" not in denied.stderr
        no_model = run("predict", "BTCUSDT")
        assert no_model.returncode == 2 and "FAILED_PRECONDITION" in no_model.stderr

        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        assert "stopping" in (tmp_path / "serve.log").read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
