"""The extract/load/import commands end to end: exit codes, summaries, lake round trip."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import psycopg
import pytest

from devstack.standin.binance_rest import StandinThread
from klinehouse.settings import Settings
from tests.extract.cli_runs import run_cli as _run


def _count(url: str, symbol: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM raw.binance_klines WHERE symbol = %s", (symbol,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_extract_invalid_symbol_exit_code_and_summary(
    binance_standin: StandinThread, warehouse: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        ["extract", "--symbol", "BNBUSDT", "--symbol", "NOPEUSDT", "--interval", "1d",
         "--start", "2024-01-01", "--end", "2024-01-10", "--source", "rest"],
        capsys,
    )  # fmt: skip
    assert code == 1
    # --end is exclusive: 2024-01-01 .. 2024-01-09, not the bar opening at 2024-01-10.
    assert re.search(r"loaded \(new\)\s+9\b", out)
    assert "FAILED: spot NOPEUSDT 1d" in out and "invalid symbol" in out
    assert "spot BNBUSDT 1d: 9 rows" in err  # plain log lines when not on a terminal
    assert _count(warehouse.database_url, "BNBUSDT") == 9


def test_extract_no_load_then_load_run(
    binance_standin: StandinThread, warehouse: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(
        ["extract", "--market", "usdm", "--symbol", "ETHUSDT", "--interval", "15m",
         "--start", "2024-03-01", "--end", "2024-03-02", "--no-load"],
        capsys,
    )  # fmt: skip
    assert code == 0, out
    assert re.search(r"written to lake\s+96\b", out)
    assert _count(warehouse.database_url, "ETHUSDT") == 0
    run_id = re.search(r"run\s+(\S+)", out)
    assert run_id
    code, out, _ = _run(["load", "--run", run_id.group(1)], capsys)
    assert code == 0 and re.search(r"loaded \(new\)\s+96\b", out)
    code, out, _ = _run(["load", "--prefix", "klines/market=usdm"], capsys)
    assert code == 0 and re.search(r"unchanged\s+96\b", out)


def test_bad_interval_is_one_line_exit_2(
    binance_standin: StandinThread, warehouse: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(
        ["extract", "--symbol", "BTCUSDT", "--interval", "7m", "--start", "2024-01-01"], capsys
    )
    assert code == 2 and "unknown interval '7m'" in err


def test_import_commands(
    shared_data: Path, warehouse: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(shared_data / "freqtrade-json" / "XRP_USDT-1h.json", tmp_path)
    code, out, _ = _run(["import-freqtrade", str(tmp_path), "--market", "spot"], capsys)
    assert code == 0 and re.search(r"loaded \(new\)\s+10,235\b", out)
    header_dir = shared_data / "binance" / "spot-archive-with-header"
    code, out, _ = _run(["import-archive", str(header_dir / "BTCUSDT-1h-2023-03.csv")], capsys)
    assert code == 0 and re.search(r"loaded \(new\)\s+743\b", out)
    code, out, _ = _run(["import-archive", str(tmp_path / "BTCUSDT-1h-2020-01.csv")], capsys)
    assert code == 1 and "BTCUSDT-1h-2020-01.csv: no such file" in out


def test_import_archive_from_url_verifies_the_checksum(
    binance_standin: StandinThread, warehouse: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    base = f"{binance_standin.url}/data/spot/monthly/klines"
    good = f"{base}/ETHUSDT/1h/ETHUSDT-1h-2024-11.zip"
    bad = f"{base}/BTCUSDT/1h/BTCUSDT-1h-2024-11.zip"
    binance_standin.config.corrupt_checksums.add("BTCUSDT-1h-2024-11.zip")
    code, out, _ = _run(["import-archive", good, bad], capsys)
    assert code == 1
    assert re.search(r"loaded \(new\)\s+720\b", out)
    assert "BTCUSDT-1h-2024-11.zip" in out and "does not match its .CHECKSUM" in out
    assert _count(warehouse.database_url, "BTCUSDT") == 0
    assert _count(warehouse.database_url, "ETHUSDT") == 720
