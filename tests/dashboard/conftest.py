"""A warehouse with real Binance klines and marts built by dbt, shared by the dashboard tests,
and the dashboard served from it on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from klinehouse.paths import REPO_ROOT
from klinehouse.settings import Settings, get_settings

# March 2023: the 13:00 bar of the 24th is missing (an outage), the 12:00 bar has no volume.
WITH_GAP = ("spot-archive-with-header", "BTCUSDT-1h-2023-03.csv")
OTHER = ("spot-archive", "ETHUSDT-1h-2024-11.csv")
MODEL_VERSION = "20230401T000000-test"


def _load(url: str, data: Path) -> None:
    from extract.archive import read_archive_csv
    from extract.load import load_frame

    for folder, name in (WITH_GAP, OTHER):
        symbol, interval = name.split("-")[:2]
        frame = read_archive_csv(
            data / "binance" / folder / name, market="spot", symbol=symbol, interval=interval
        )
        load_frame(frame, url=url)


def _insert_minutes(url: str) -> None:
    """Two days of synthetic SYNUSDT 1m bars, minute 1000 (day one, 16:40) missing: dbt
    resamples them into 5m … 1d (complete buckets only)."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO raw.binance_klines (market, symbol, interval, open_time, close_time,"
            " open, high, low, close, volume, source)"
            " SELECT 'spot', 'SYNUSDT', '1m', t, t + interval '59.999 seconds',"
            " 100 + i % 7, 108 + i % 3, 99 - (i % 2) * 0.5, 100 + i % 5, 1 + i % 4, 'import'"
            " FROM generate_series(0, 2879) AS i,"
            " LATERAL (SELECT '2023-01-01 00:00+00'::timestamptz + i * interval '1 minute') AS m(t)"
            " WHERE i <> 1000"
        )


def _register_model(url: str) -> None:
    """One registry row as `klinehouse train` writes it (its two folds' backtests)."""
    folds = [
        {
            "number": i,
            "test_start": f"2023-03-{d0}T00:00:00+00:00",
            "test_end": f"2023-03-{d1}T00:00:00+00:00",
            "backtest": {"model": {"net_return": m}, "buy_and_hold": {"net_return": h}},
        }
        for i, (d0, d1, m, h) in enumerate(
            [("15", "22", 0.02, -0.01), ("22", "29", 0.01, 0.03)], start=1
        )
    ]
    metrics = {
        "classifier": {"log_loss": 0.6912, "auc": 0.53},
        "backtest": {"model": {"net_return": 0.0302}, "buy_and_hold": {"net_return": 0.0197}},
        "folds": folds,
    }
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO ml.model_registry (version, status, status_reason, market, interval,"
            " symbols, features, train_start, train_end, buy_threshold, sell_threshold, fee_rate,"
            " seed, code_version, data_fingerprint, metrics, artifact_uri) VALUES (%s,"
            " 'rejected', 'net return does not beat buy_and_hold', 'spot', '1h', %s, %s,"
            " '2023-03-01', '2023-03-31', 0.55, 0.5, 0.001, 7, 'test', '{}', %s,"
            " 's3://absent-bucket/models/x/')",
            (MODEL_VERSION, ["BTCUSDT"], ["log_return_1"], Jsonb(metrics)),
        )


@pytest.fixture(scope="module")
def warehouse(stack: Settings, shared_data: Path) -> Iterator[str]:
    """A fresh migrated database with two series loaded, dbt run, and one registered model."""
    from transform.runner import run_dbt

    admin = stack.require_database_url().rsplit("/", 1)[0] + "/postgres"
    name = f"t_dash_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE klinehouse_template").format(sql.Identifier(name))
        )
    url = admin.rsplit("/", 1)[0] + "/" + name
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KLINEHOUSE_DATABASE_URL", url)
        get_settings(fresh=True)
        _load(url, shared_data)
        _insert_minutes(url)
        run_dbt(["run"], database_url=url)
        _register_model(url)
        yield url
    get_settings(fresh=True)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    url: str
    database_url: str
    log: Path  # the server's stderr


@pytest.fixture(scope="module")
def dashboard_server(
    stack: Settings, warehouse: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """`klinehouse dashboard --port N` as a user starts it, against the warehouse, reading as
    the stack's klinehouse_reader login (marts and the registry only)."""
    reader = stack.reader_database_url.rsplit("/", 1)[0] + "/" + warehouse.rsplit("/", 1)[1]
    assert "klinehouse_reader" in reader
    port = _free_port()
    log = tmp_path_factory.mktemp("dashboard") / "server.log"
    env = {
        **os.environ,
        "KLINEHOUSE_DATABASE_URL": warehouse,
        "KLINEHOUSE_READER_DATABASE_URL": reader,
        "PYTHONPATH": str(REPO_ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "dashboard", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urlopen(base + "/", timeout=2):
                break
        except (URLError, ConnectionError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(
                    f"the dashboard did not start: {log.read_text()[-2000:]}"
                ) from None
            time.sleep(0.2)
    try:
        yield Server(base, warehouse, log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
