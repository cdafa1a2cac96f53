"""`klinehouse transform` on the real archive with the 2023-03-24 outage, its errors, and
`klinehouse docs`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from app.cli import main
from app.demo.transform import step as demo_step
from klinehouse.settings import get_settings
from transform.runner import target_dir


def test_transform_finds_exactly_the_real_missing_bar(
    warehouse: str, shared_data: Path, load_archives
) -> None:
    load_archives(warehouse, (shared_data / "binance" / "spot-archive-with-header").glob("*.csv"))
    main(["transform", "--select", "+candle_gaps +candles"])
    with psycopg.connect(warehouse) as conn:
        gaps = conn.execute(
            "SELECT market, symbol, interval, gap_start, gap_end, missing_bars FROM marts.candle_gaps"
        ).fetchall()
        flags = conn.execute(
            "SELECT open_time, is_zero_volume, is_close_time_short FROM marts.candles"
            " WHERE is_zero_volume OR is_close_time_short"
        ).fetchall()
    missing = datetime(2023, 3, 24, 13, tzinfo=UTC)
    assert gaps == [("spot", "BTCUSDT", "1h", missing, missing, 1)]
    # The bar before the outage: flat, zero volume, closed at 12:39:41.646.
    assert flags == [(datetime(2023, 3, 24, 12, tzinfo=UTC), True, True)]


def test_transform_reports_an_unreachable_database_in_one_line(
    stack: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", "postgresql://nobody:secret@127.0.0.1:9/nowhere")
    get_settings(fresh=True)
    with pytest.raises(SystemExit) as exit_info:
        main(["transform", "--select", "stg_binance__klines"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("klinehouse: dbt build failed")
    assert "secret" not in message
    get_settings(fresh=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_docs_generates_and_serves_the_lineage_site(
    warehouse: str, shared_data: Path, load_archives, capsys: pytest.CaptureFixture[str]
) -> None:
    load_archives(
        warehouse, (shared_data / "binance" / "spot-archive").glob("BTCUSDT-1h-2025-0[45].csv")
    )
    demo_step()  # what `make demo` runs: the whole dbt build, then the marts' row counts
    counts = capsys.readouterr().out
    assert "marts.candles" in counts and "1,464 rows" in counts  # April + May 2025, hourly
    main(["docs", "--no-serve"])
    catalog = json.loads((target_dir() / "catalog.json").read_text())
    documented = {node["metadata"]["name"] for node in catalog["nodes"].values()}
    assert {"candles", "candle_features", "candle_labels", "candle_gaps"} <= documented
    manifest = json.loads((target_dir() / "manifest.json").read_text())
    assert "model.klinehouse.candles" in manifest["parent_map"]["model.klinehouse.candle_features"]

    port = _free_port()
    env = {**os.environ, "KLINEHOUSE_DATABASE_URL": warehouse}
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "docs", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        page = ""
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode()
                    break
            except OSError:
                time.sleep(1)
        assert "dbt" in page.lower(), "the docs site did not answer"
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/manifest.json", timeout=5
        ) as response:
            served = json.loads(response.read())
        assert "model.klinehouse.candle_features" in served["nodes"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
