"""`klinehouse stream` refuses bad input with one line naming it (exit 2), before any I/O."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {"KLINEHOUSE_BINANCE_WS_URL": "https://stream.example"},
         "KLINEHOUSE_BINANCE_WS_URL is 'https://stream.example': expected a ws:// or wss:// URL"),
        (["--market", "usdm"], {"KLINEHOUSE_BINANCE_FUTURES_WS_URL": "fstream.example"},
         "KLINEHOUSE_BINANCE_FUTURES_WS_URL is 'fstream.example'"),
        (["--flush-rows", "0"], {}, "--flush-rows must be >= 1"),
        (["--interval", "7m"], {}, "Invalid value for '--interval': '7m'"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KLINEHOUSE_")}
    result = subprocess.run(
        [sys.executable, "-m", "app", "stream", "--symbol", "BTCUSDT", *args],
        env={**clean, "KLINEHOUSE_HOME": str(tmp_path), **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
