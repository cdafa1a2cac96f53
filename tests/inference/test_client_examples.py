"""The client examples of docs/grpc-clients.md against a real server: the Node script
docs/examples/node/client.js run with node (its candles carry the warehouse's times to the
nanosecond, its prediction the champion's), and the Python example run as written."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator

import pytest

from inference.server import ServerThread
from klinehouse import paths
from klinehouse.settings import Settings

from ..marts import create_database, drop_database, with_db
from .conftest import TOKEN
from .test_predictions import register

DOC = paths.REPO_ROOT / "docs" / "grpc-clients.md"
CLIENT = paths.REPO_ROOT / "docs" / "examples" / "node" / "client.js"
NODE = shutil.which("node")

# On CI (`make test` installs node-deps first) a missing tool is a failure, never a skip.
needs_node = pytest.mark.skipif(
    not os.environ.get("CI")
    and (
        NODE is None or not (paths.REPO_ROOT / "node_modules" / "@grpc" / "proto-loader").exists()
    ),
    reason="node or @grpc/grpc-js + @grpc/proto-loader missing: install node, `make node-deps`",
)


def run_client(
    port: int, *args: str, token: str | None = TOKEN
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"} | ({"KLINEHOUSE_GRPC_TOKEN": token} if token else {})
    assert NODE is not None
    return subprocess.run(
        [NODE, str(CLIENT), "--address", f"127.0.0.1:{port}", *args],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip


@pytest.fixture
def served(
    predicting_template: str,
    stack: Settings,
    lake_settings: Settings,
    server_factory: Callable[..., ServerThread],
) -> Iterator[ServerThread]:
    """BTCUSDT 1h marts built by dbt (48 bars from 2024-02-28, base price 1000), a champion,
    and a server that wants a bearer token."""
    name = create_database(stack, predicting_template, prefix="node_t_")
    try:
        register(
            with_db(stack.require_database_url(), name), "node-m1", buy=0.0, sell=0.0, quality=0.01
        )  # always BUY
        yield server_factory(with_db(stack.reader_url(), name), token=TOKEN)
    finally:
        drop_database(stack, name)


@needs_node
def test_node_client_prints_candles_and_a_prediction(served: ServerThread) -> None:
    proc = run_client(
        served.port, "--symbol", "BTCUSDT", "--interval", "1h",
        "--start", "2024-02-28T01:00:00Z", "--end", "2024-02-28T04:00:00Z",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    candles = [line["candle"] for line in lines if "candle" in line]
    assert [c["open_time"] for c in candles] == [
        f"2024-02-28T0{h}:00:00.000000000Z" for h in (1, 2, 3)
    ]
    assert [c["close_time"] for c in candles] == [
        f"2024-02-28T0{h}:59:59.999000000Z" for h in (1, 2, 3)
    ]
    first = candles[0]  # bar 1 of the template: base + 1, exact to 8 decimals
    assert first["market"] == "MARKET_SPOT" and first["symbol"] == "BTCUSDT"
    assert (first["open"], first["close"], first["trades"]) == (
        "1001.00000000",
        "1001.12345678",
        "101",
    )
    (prediction,) = [line["prediction"] for line in lines if "prediction" in line]
    assert prediction["model_version"] == "node-m1"
    assert prediction["advice"] == "ADVICE_BUY"  # the enum by name (loader `enums: String`)
    assert 0.0 <= prediction["p_up"] <= 1.0
    assert prediction["feature_open_time"] == "2024-02-29T23:00:00.000000000Z"
    assert prediction["stale"] is True and prediction["feature_age_seconds"] > 300 * 86400


@needs_node
def test_node_client_reports_the_status_code(served: ServerThread) -> None:
    bad_interval = run_client(served.port, "--interval", "2x", "--start", "2024-02-28T01:00:00Z")
    assert bad_interval.returncode == 1
    assert bad_interval.stderr.startswith("INVALID_ARGUMENT interval: unknown interval '2x'")
    no_token = run_client(served.port, "--start", "2024-02-28T01:00:00Z", token=None)
    assert no_token.returncode == 1
    assert no_token.stderr.startswith("UNAUTHENTICATED missing or wrong bearer token")


def test_the_python_example_of_the_document_runs(server: ServerThread) -> None:
    (code,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert "127.0.0.1:50051" in code
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code.replace("127.0.0.1:50051", f"127.0.0.1:{server.port}"), {})
    lines = out.getvalue().splitlines()
    assert len(lines) == 24, lines  # BTCUSDT 1h on 2024-03-01 (tests/inference/conftest.py)
    bar = 48  # 2024-02-28 00:00 is bar 0 (a leap year); close = base 40000 + bar + 0.12345678
    assert lines[0] == (
        f"2024-03-01 00:00:00+00:00 2024-03-01 00:59:59.999000+00:00 {40000 + bar}.12345678 "
        "MARKET_SPOT"
    )
