"""Data Docs read offline: the index lists each run by its suites and window, in the HTML
itself (no script or stylesheet from a CDN), with the failing rows' keys the CLI prints."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from expectations.gate import validate

_EXTERNAL = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"']?https?://", re.I)


@pytest.fixture
def small_raw(database_url: str, shared_data: Path) -> str:
    """One month of real BTCUSDT 1h klines (2024-11) in raw, through the loaders."""
    from extract.archive import read_archive_csv
    from extract.load import load_frame

    path = shared_data / "binance" / "spot-archive" / "BTCUSDT-1h-2024-11.csv"
    load_frame(
        read_archive_csv(path, market="spot", symbol="BTCUSDT", interval="1h"), url=database_url
    )
    return database_url


def test_index_names_runs_and_renders_rows_without_cdn(small_raw: str, tmp_path: Path) -> None:
    passed = validate(
        "2024-11-10", url=small_raw, suites=["raw_klines"], as_of="2024-12-01", home=tmp_path
    )
    assert passed.success, passed.summary()
    assert passed.run_name == "raw_klines__since-2024-11-10T000000Z__as-of-2024-12-01T000000Z"
    with psycopg.connect(small_raw) as conn:
        conn.execute(
            "UPDATE raw.binance_klines SET high = low - 1"
            " WHERE symbol = 'BTCUSDT' AND open_time = '2024-11-20 07:00Z'"
        )
    failed = validate(url=small_raw, suites=["raw_klines"], home=tmp_path)
    assert not failed.success
    assert failed.run_name == "raw_klines__whole-tables__as-of-now"
    assert failed.data_docs is not None
    index = failed.data_docs.read_text()

    assert not _EXTERNAL.findall(index), _EXTERNAL.findall(index)
    # The results table is in the HTML: one row per stored result, each linking its page.
    table = index[index.index("ge-index-page-validation-results-table") :]
    rows = re.findall(r"<tr>\s*<td class=\"gate-\w+\">.*?</tr>", table, re.S)
    assert len([r for r in rows if "raw_klines__" in r]) == 2, rows
    # The status in words (GX shows it as an icon of a font from a CDN).
    statuses = [re.search(r"(Failed|Success)</td>", row) for row in rows]
    assert sorted(m[1] for m in statuses if m) == ["Failed", "Success"], rows
    assert re.search(r'<a href="expectations/raw_klines\.html">raw_klines</a>', index)
    for run in (passed.run_name, failed.run_name):
        assert re.search(rf'<a href="validations/raw_klines/{re.escape(run)}/[^"]+\.html">', index)
    # What the CLI printed, sample keys included, heads the index.
    assert "quality gate FAILED" in index and "2024-11-20T07:00:00+00:00" in index
    assert "expect_column_pair_values_a_to_be_greater_than_b" in index
    # Each linked page exists and is just as self-contained.
    for link in re.findall(r'href="((?:validations|gate_runs)/[^"]+\.html)"', index):
        page = (failed.data_docs.parent / link).read_text()
        assert not _EXTERNAL.findall(page), link
