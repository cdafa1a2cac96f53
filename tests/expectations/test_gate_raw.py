"""The raw suite on real data: a clean load passes, each injected defect fails by name."""

from __future__ import annotations

import psycopg

from expectations.gate import validate

COPY_SCHEMA = "qa_copy"  # the schema the raw_copy fixture fills

RAW = ["raw_schema", "raw_klines", "raw_streamed_series"]


def test_clean_real_load_passes(loaded_url: str, tmp_path) -> None:
    report = validate(url=loaded_url, suites=RAW, home=tmp_path)
    print(report.summary())
    assert report.success, report.summary()
    assert report.evaluated > 20
    assert report.data_docs is not None and report.data_docs.is_file()


def test_high_below_low_fails(raw_copy: str, tmp_path) -> None:
    with psycopg.connect(raw_copy) as conn:
        conn.execute(
            f"UPDATE {COPY_SCHEMA}.binance_klines SET high = low - 1 "
            "WHERE symbol = 'ETHUSDT' AND open_time = '2025-03-04 05:00Z'"
        )
    report = validate(url=raw_copy, raw_schema=COPY_SCHEMA, suites=RAW, home=tmp_path)
    print(report.summary())
    assert not report.success
