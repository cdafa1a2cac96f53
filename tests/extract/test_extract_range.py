"""Issue 15.8 and 15.11: `extract`'s range (exclusive --end, bad and ancient --start) and
`--source auto` falling back to REST for a month whose archive fails its checksum."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from devstack.standin.binance_rest import StandinThread
from extract.extractor import ExtractRequest, run_extract
from klinehouse.settings import Settings
from tests.extract.cli_runs import run_cli as _run


def _rows(url: str, symbol: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT open_time, source FROM raw.binance_klines WHERE symbol = %s ORDER BY 1",
            (symbol,),
        ).fetchall()


def test_rest_end_is_exclusive(binance_standin: StandinThread, warehouse: Settings) -> None:
    summary = run_extract(
        ExtractRequest(
            "spot", ["BNBUSDT"], ["1h"], start=datetime(2024, 1, 1, tzinfo=UTC),
            end=datetime(2024, 1, 2, tzinfo=UTC), source="rest",
        )
    )  # fmt: skip
    assert not summary.failures
    rows = _rows(warehouse.database_url, "BNBUSDT")
    assert len(rows) == 24  # was 25: the bar opening at --end was loaded
    assert rows[-1][0] == datetime(2024, 1, 1, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2024-01-02", "--end", "2024-01-01"], "is not before --end"),
        (["--start", "2024-01-01", "--end", "2024-01-01"], "is not before --end"),
        (["--start", "2999-01-01"], "is in the future"),
    ],
    ids=["start-after-end", "empty-range", "future"],
)
def test_an_unusable_range_is_one_line_exit_2(
    args: list[str],
    message: str,
    binance_standin: StandinThread,
    warehouse: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _run(["extract", "--symbol", "BNBUSDT", "--interval", "1h", *args], capsys)
    assert code == 2, out + err  # exited 0 with "0 rows" before
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert binance_standin.stats.kline_requests == 0


def test_a_start_before_binance_is_clamped_not_thousands_of_requests(
    binance_standin: StandinThread, warehouse: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        ["extract", "--symbol", "BNBUSDT", "--interval", "1d", "--source", "rest",
         "--start", "0001-01-01", "--end", "2017-09-01"],
        capsys,
    )  # fmt: skip
    assert code == 0, out + err
    assert "before Binance's first klines: starting at 2017-07-01" in err
    assert binance_standin.stats.kline_requests <= 2  # was thousands, with negative startTime
    assert binance_standin.stats.status_counts.get(400, 0) == 0
    rows = _rows(warehouse.database_url, "BNBUSDT")
    assert rows and rows[-1][0] == datetime(2017, 8, 31, tzinfo=UTC)


def test_auto_source_takes_a_month_from_rest_when_its_archive_fails_its_checksum(
    binance_standin: StandinThread, warehouse: Settings
) -> None:
    binance_standin.config.corrupt_checksums.add("BTCUSDT-1h-2024-12.zip")
    logged: list[str] = []
    summary = run_extract(
        ExtractRequest(
            "spot", ["BTCUSDT"], ["1h"], start=datetime(2024, 11, 1, tzinfo=UTC),
            end=datetime(2025, 1, 1, tzinfo=UTC), source="auto",
        ),
        log=logged.append,
    )  # fmt: skip
    assert not summary.failures  # the whole series failed before
    rows = _rows(warehouse.database_url, "BTCUSDT")
    assert len(rows) == (30 + 31) * 24
    sources = {(t.month, s) for t, s in rows}
    assert sources == {(11, "archive"), (12, "rest")}
    assert any("BTCUSDT-1h-2024-12.zip" in line and "from REST" in line for line in logged)
