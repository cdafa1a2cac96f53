"""The gate on real data: a clean warehouse passes; each injected defect fails by name."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from expectations.gate import parse_since, validate
from expectations.report import ValidationReport
from expectations.suites import SUITE_NAMES
from klinehouse.errors import KlinehouseError


def _execute(url: str, statement: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(statement).rowcount


def _failed(report: ValidationReport) -> set[tuple[str, str | None]]:
    return {(f.expectation, f.column) for f in report.failures}


def test_clean_real_warehouse_passes_every_suite(warehouse: str, tmp_path: Path) -> None:
    report = validate(url=warehouse, home=tmp_path)
    assert report.success, report.summary()
    assert report.suites == SUITE_NAMES
    assert report.evaluated >= 60 and not report.failures
    # Data Docs: a static site that opens in a browser, listing every suite.
    assert report.data_docs == tmp_path / "quality" / "data_docs" / "index.html"
    index = report.data_docs.read_text()
    assert all(name in index for name in SUITE_NAMES)


RAW_DEFECTS = {
    "high below low": (
        "UPDATE {s}.binance_klines SET high = low - 1 "
        "WHERE symbol = 'ETHUSDT' AND open_time = '2025-03-04 05:00Z'",
        ("expect_column_pair_values_a_to_be_greater_than_b", "high, low"),
        1,
    ),
    "duplicate key": (
        "INSERT INTO {s}.binance_klines SELECT * FROM {s}.binance_klines "
        "WHERE symbol = 'ETHUSDT' AND open_time = '2025-03-04 05:00Z'",
        ("expect_compound_columns_to_be_unique", "market, symbol, interval, open_time"),
        2,  # GX counts every row of a duplicate group
    ),
    "negative volume": (
        "UPDATE {s}.binance_klines SET volume = -volume "
        "WHERE symbol = 'ETHUSDT' AND open_time = '2025-03-04 05:00Z'",
        ("expect_column_values_to_be_between", "volume"),
        1,
    ),
}


@pytest.mark.parametrize("defect", list(RAW_DEFECTS))
def test_raw_defect_fails_with_its_expectation(
    defect: str, warehouse: str, copy_schema: Callable[..., str], tmp_path: Path
) -> None:
    statement, expected, count = RAW_DEFECTS[defect]
    schema = copy_schema("binance_klines")
    assert _execute(warehouse, statement.format(s=schema)) == 1
    report = validate(url=warehouse, raw_schema=schema, suites=["raw_klines"], home=tmp_path)
    assert not report.success
    assert _failed(report) == {expected}, report.summary()
    (failure,) = report.failures
    assert failure.table == f"{schema}.binance_klines"
    assert failure.unexpected_count == count
    sample = failure.sample_keys[0]
    assert (sample["symbol"], str(sample["open_time"])) == ("ETHUSDT", "2025-03-04 05:00:00+00:00")
    assert expected[0] in report.summary() and "ETHUSDT" in report.summary()


def test_stale_streamed_series_fails(
    warehouse: str, copy_schema: Callable[..., str], tmp_path: Path
) -> None:
    schema = copy_schema("binance_klines")
    # Two streamed 1m series: one live (its last bar a minute ago), one dead for an hour.
    for symbol, age in (("SOLUSDT", "1 minute"), ("XRPUSDT", "1 hour")):
        _execute(
            warehouse,
            f"INSERT INTO {schema}.binance_klines (market, symbol, interval, open_time, "
            "close_time, open, high, low, close, volume, source) "
            f"SELECT 'spot', '{symbol}', '1m', t, t + interval '59.999 seconds', "
            "1, 1, 1, 1, 0, 'stream' FROM generate_series(date_trunc('minute', now()) - "
            f"interval '{age}' - interval '10 minutes', date_trunc('minute', now()) - "
            f"interval '{age}', interval '1 minute') AS t",
        )
    report = validate(
        url=warehouse, raw_schema=schema, suites=["raw_streamed_series"], home=tmp_path
    )
    assert _failed(report) == {("expect_streamed_series_fresh", None)}, report.summary()
    (failure,) = report.failures
    assert failure.unexpected_count == 1
    assert [k["symbol"] for k in failure.sample_keys] == ["XRPUSDT"]
    # A replay validated as of its own clock: the dead series was live back then.
    replay = validate(
        url=warehouse,
        raw_schema=schema,
        suites=["raw_streamed_series"],
        home=tmp_path,
        as_of=datetime.now(UTC) - timedelta(minutes=59),
    )
    assert replay.success, replay.summary()


def test_rsi_outside_0_100_fails(
    warehouse: str, copy_schema: Callable[..., str], tmp_path: Path
) -> None:
    schema = copy_schema("candle_features")
    touched = _execute(
        warehouse,
        f"UPDATE {schema}.candle_features SET rsi_14 = 100.5 "
        "WHERE symbol = 'BTCUSDT' AND interval = '1h' AND open_time = '2025-02-10 12:00Z'",
    )
    assert touched == 1
    report = validate(url=warehouse, marts_schema=schema, suites=["candle_features"], home=tmp_path)
    assert _failed(report) == {("expect_column_values_to_be_between", "rsi_14")}
    (failure,) = report.failures
    assert failure.unexpected_count == 1 and failure.table == f"{schema}.candle_features"
    assert str(failure.sample_keys[0]["open_time"]) == "2025-02-10 12:00:00+00:00"


def test_unlisted_gap_and_label_on_last_bar_fail(
    warehouse: str, copy_schema: Callable[..., str], tmp_path: Path
) -> None:
    schema = copy_schema("candles", "candle_gaps", "candle_labels")
    # A hole that candle_gaps does not know, and a label invented for a series' last bar.
    _execute(
        warehouse,
        f"DELETE FROM {schema}.candles WHERE symbol = 'ETHUSDT' AND interval = '1h' "
        "AND open_time = '2025-01-15 03:00Z'",
    )
    _execute(
        warehouse,
        f"UPDATE {schema}.candle_labels SET target_up = true, target_log_return_1 = 0.01 "
        f"WHERE (symbol, interval, open_time) = (SELECT symbol, interval, max(open_time) "
        f"FROM {schema}.candle_labels WHERE symbol = 'ETHUSDT' GROUP BY symbol, interval)",
    )
    report = validate(
        url=warehouse, marts_schema=schema, suites=["candles", "candle_labels"], home=tmp_path
    )
    assert _failed(report) == {
        ("expect_gaps_listed_in_candle_gaps", None),
        ("expect_no_label_on_last_bar", None),
    }, report.summary()
    gap = next(f for f in report.failures if f.expectation == "expect_gaps_listed_in_candle_gaps")
    assert gap.unexpected_count == 1
    assert str(gap.sample_keys[0]["previous_open_time"]) == "2025-01-15 02:00:00+00:00"


def test_since_window_skips_older_defects(
    warehouse: str, copy_schema: Callable[..., str], tmp_path: Path
) -> None:
    schema = copy_schema("binance_klines")
    _execute(
        warehouse,
        f"UPDATE {schema}.binance_klines SET volume = -1 "
        "WHERE symbol = 'BTCUSDT' AND open_time = '2025-05-30 10:00Z'",
    )
    after = validate(
        "2025-05-31", url=warehouse, raw_schema=schema, suites=["raw_klines"], home=tmp_path
    )
    assert after.success, after.summary()
    assert after.since == "2025-05-31T00:00:00+00:00"
    covering = validate(
        "2025-05-30T10:00Z", url=warehouse, raw_schema=schema, suites=["raw_klines"], home=tmp_path
    )
    assert _failed(covering) == {("expect_column_values_to_be_between", "volume")}


def test_cli_exits_1_and_names_the_failure(
    warehouse: str,
    copy_schema: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from app.cli import cli
    from klinehouse.settings import get_settings

    schema = copy_schema("binance_klines")
    _execute(
        warehouse,
        f"UPDATE {schema}.binance_klines SET high = low - 1 "
        "WHERE symbol = 'BTCUSDT' AND open_time = '2024-12-01 00:00Z'",
    )
    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", warehouse)
    monkeypatch.setenv("KLINEHOUSE_HOME", str(tmp_path))
    get_settings(fresh=True)
    args = ["validate", "--raw-schema", schema, "--suite", "raw_klines", "--since", "2024-12-01"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert (
        "FAILED" in result.output
        and "expect_column_pair_values_a_to_be_greater_than_b" in result.output
    )
    assert (tmp_path / "quality" / "data_docs" / "index.html").is_file()
    get_settings(fresh=True)


def test_bad_requests_get_clear_errors(warehouse: str, tmp_path: Path) -> None:
    with pytest.raises(KlinehouseError, match="cannot read --since 'yesterday'"):
        parse_since("yesterday")
    with pytest.raises(KlinehouseError, match="unknown suite"):
        validate(url=warehouse, suites=["nope"], home=tmp_path)
    with pytest.raises(KlinehouseError, match="invalid schema name"):
        validate(url=warehouse, raw_schema="raw; drop table x", home=tmp_path)
    with pytest.raises(KlinehouseError, match=r"nowhere\.candles missing .*klinehouse transform"):
        validate(url=warehouse, marts_schema="nowhere", suites=["candles"], home=tmp_path)


def test_demo_step_passes_on_real_data(
    warehouse: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from app.demo.expectations import step
    from klinehouse.settings import get_settings

    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", warehouse)
    monkeypatch.setenv("KLINEHOUSE_HOME", str(tmp_path))
    get_settings(fresh=True)
    try:
        step()  # raises when the gate fails
    finally:
        monkeypatch.undo()
        get_settings(fresh=True)
    assert (tmp_path / "quality" / "data_docs" / "index.html").is_file()
