"""Issue 15.4, 15.5, 15.8 and the revision rule: bad input is refused by name, file by file.

Each input file loads whole or not at all; the others of the run still load; the
run exits 1 naming each failed file and why, without a traceback.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import psycopg
import pytest

from extract import archive
from extract.frames import KlineParseError
from klinehouse.settings import Settings
from tests.extract.cli_runs import run_cli

GOOD = "1730419200000,1.5,2,0.5,1.5,10,1730422799999,15,3,5,7,0\n"
NEXT = "1730422800000,1.5,2,0.5,1.5,10,1730426399999,15,3,5,7,0\n"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code, out, err = run_cli(argv, capsys)
    return code, out + err


def _query(url: str, statement: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(statement).fetchall()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # A truncated last line (cut inside the trade count): polars filled NULLs before.
        (GOOD + NEXT[:38], r"line 2: expected 12 fields, found 7 \(truncated\?\)"),
        (GOOD + "1730422800000,1.5,2,0.5,1.5,10,1730426399999,15,3\n", r"line 2: .*found 9"),
        (GOOD + NEXT.replace(",0.5,", ",0.512345678,"), r"line 2, field 'low': '0.512345678'"),
        (GOOD + NEXT.replace(",15,", ",2.00930E+07,"), r"line 2, field 'quote_volume'.*E\+07"),
    ],
    ids=["truncated-last-line", "nine-fields", "nine-decimals", "excel-exponent"],
)
def test_corrupt_archive_rows_are_refused_naming_file_line_and_field(
    body: str, expected: str, tmp_path: Path
) -> None:
    with pytest.raises(KlineParseError, match="BTCUSDT-1h-2024-11.csv: " + expected):
        _read_named(body, tmp_path)


def _read_named(body: str, folder: Path) -> None:
    path = folder / "BTCUSDT-1h-2024-11.csv"
    path.write_text(body)
    archive.read_archive_csv(path, market="spot", symbol="BTCUSDT", interval="1h")


def test_header_lines_count_in_the_line_number(tmp_path: Path) -> None:
    header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,tb,tq,ignore\n"
    with pytest.raises(KlineParseError, match=r"line 3, field 'close': 'x'"):
        _read_named(header + GOOD + NEXT.replace(",1.5,10,", ",x,10,"), tmp_path)


def test_bad_archive_files_fail_alone_and_the_run_exits_1(
    shared_data: Path, warehouse: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = shared_data / "binance" / "spot-archive" / "ETHUSDT-1h-2024-11.csv"
    shutil.copy(good, tmp_path / good.name)
    lines = good.read_text().splitlines(keepends=True)
    # Whole or nothing: a file whose 500th line is cut loads none of its 499 good lines.
    (tmp_path / "BTCUSDT-1h-2024-11.csv").write_text(
        "".join(lines[:499]) + lines[499][:40] + "\n" + "".join(lines[500:])
    )
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("SOLUSDT-1h-2024-11.csv", good.read_text())
    (tmp_path / "SOLUSDT-1h-2024-11.zip").write_bytes(zipped.getvalue()[:3000])  # truncated
    (tmp_path / "XRPUSDT-1h-2024-11.csv").write_text("")

    code, out = _run(["import-archive", str(tmp_path)], capsys)

    assert code == 1, out
    assert "Traceback" not in out
    failed = [line for line in out.splitlines() if "FAILED:" in line and "  FAILED" in line]
    assert len(failed) == 3, out
    assert re.search(r"BTCUSDT-1h-2024-11\.csv: line 500: expected 12 fields", out)
    assert re.search(r"SOLUSDT-1h-2024-11\.zip: not a readable zip", out)
    assert re.search(r"XRPUSDT-1h-2024-11\.csv: empty file", out)
    assert _query(
        warehouse.database_url, "SELECT symbol, count(*) FROM raw.binance_klines GROUP BY 1"
    ) == [("ETHUSDT", 720)]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[[1640995200000, NaN, 2, 0.5, 1.5, 10]]", "NaN is not a price"),
        ("[[1640995200000, Infinity, 2, 0.5, 1.5, 10]]", "Infinity is not a price"),
        ("[[1640995200000, true, 2, 0.5, 1.5, 10]]", r"row 1, field 'open': true is not a number"),
        ("[[1640995200000, 1, 2, 0.5, [1.5], 10]]", r"row 1, field 'close': \[\"1.5\"\]"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("[]", "empty file"),
    ],
    ids=["nan", "infinity", "true", "nested-list", "deep-nesting", "empty"],
)
def test_bad_freqtrade_file_fails_alone(
    content: str,
    expected: str,
    shared_data: Path,
    warehouse: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = json.loads((shared_data / "freqtrade-json" / "BTC_USDT-1h.json").read_text())[:48]
    (tmp_path / "BTC_USDT-1h.json").write_text(json.dumps(rows))
    (tmp_path / "ETH_USDT-1h.json").write_text(content)

    code, out = _run(["import-freqtrade", str(tmp_path), "--market", "spot"], capsys)

    assert code == 1 and "Traceback" not in out, out
    (failure,) = [line for line in out.splitlines() if line.startswith("  FAILED:")]
    assert "ETH_USDT-1h.json" in failure and re.search(expected, failure), failure
    assert _query(
        warehouse.database_url, "SELECT symbol, count(*) FROM raw.binance_klines GROUP BY 1"
    ) == [("BTCUSDT", 48)]


def test_freqtrade_file_in_epoch_seconds_is_not_1970(
    shared_data: Path, warehouse: Settings, tmp_path: Path
) -> None:
    from extract.importers import import_freqtrade_run

    rows = json.loads((shared_data / "freqtrade-json" / "BTC_USDT-1h.json").read_text())[:24]
    seconds = [[r[0] // 1000, *r[1:]] for r in rows]
    (tmp_path / "BTC_USDT-1h.json").write_text(json.dumps(seconds))
    summary = import_freqtrade_run(tmp_path, market="spot")
    assert not summary.failures and summary.load.inserted == 24
    assert _query(
        warehouse.database_url,
        "SELECT min(open_time)::text, max(open_time)::text FROM raw.binance_klines",
    ) == [("2022-01-01 00:00:00+00", "2022-01-01 23:00:00+00")]


def test_a_reload_that_rewrites_the_series_is_refused_unless_accepted(
    shared_data: Path, warehouse: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = shared_data / "binance" / "spot-archive"
    code, out = _run(["import-archive", str(folder / "ETHUSDT-1h-2024-11.csv")], capsys)
    assert code == 0, out
    before = _query(warehouse.database_url, "SELECT sum(close), count(*) FROM raw.binance_klines")
    # Another symbol's rows under this series' name: every close moves by far more than 1 %.
    wrong = tmp_path / "ETHUSDT-1h-2024-11.csv"
    shutil.copy(folder / "BTCUSDT-1h-2024-11.csv", wrong)
    code, out = _run(["import-archive", str(wrong)], capsys)
    assert code == 1 and "Traceback" not in out
    assert re.search(r"ETHUSDT-1h-2024-11\.csv: refused, it would revise 720 stored rows", out)
    assert "--accept-revisions" in out
    assert (
        _query(warehouse.database_url, "SELECT sum(close), count(*) FROM raw.binance_klines")
        == before
    )

    # A couple of small corrections (Binance revising a bar) load and are listed.
    lines = (folder / "ETHUSDT-1h-2024-11.csv").read_text().splitlines(keepends=True)
    fields = lines[10].split(",")
    fields[5] = str(float(fields[5]) + 1)  # the volume of one bar
    lines[10] = ",".join(fields)
    wrong.write_text("".join(lines))
    code, out = _run(["import-archive", str(wrong)], capsys)
    assert code == 0, out
    assert re.search(r"revised\s+1\b", out)
    assert re.search(r"revised: spot ETHUSDT 1h 2024-11-01T10:00:00\+00:00: close", out)

    shutil.copy(folder / "BTCUSDT-1h-2024-11.csv", wrong)
    code, out = _run(["import-archive", str(wrong), "--accept-revisions"], capsys)
    assert code == 0, out
    assert re.search(r"revised\s+720\b", out) and out.count("revised: spot ETHUSDT 1h") == 20
    assert "... and 700 more" in out


def test_a_single_close_moving_more_than_1_percent_is_refused(
    shared_data: Path, warehouse: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = shared_data / "binance" / "spot-archive" / "ETHUSDT-1h-2024-11.csv"
    assert _run(["import-archive", str(source)], capsys)[0] == 0
    lines = source.read_text().splitlines(keepends=True)
    fields = lines[3].split(",")
    fields[4] = f"{float(fields[4]) * 1.02:.2f}"  # close +2 % (high no longer the max: kept)
    lines[3] = ",".join(fields)
    changed = tmp_path / source.name
    changed.write_text("".join(lines))
    code, out = _run(["import-archive", str(changed)], capsys)
    assert code == 1
    assert "1 stored close(s) would move by more than 1%" in out
