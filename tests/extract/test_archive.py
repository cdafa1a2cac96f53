"""Archive CSVs: exact decimals, header and ms/µs detection, checksums, clear parse errors."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from extract import archive
from extract.frames import KlineParseError, invariant_violations
from klinehouse import klines


def _source_rows(path: Path) -> list[list[str]]:
    """The file's data rows as text, read independently of the code under test."""
    lines = [line.split(",") for line in path.read_text().splitlines() if line.strip()]
    return [row for row in lines if row[0].isdigit()]


def _utc(raw: str) -> datetime:
    value = int(raw)
    seconds = value / 1_000_000 if len(raw) == 16 else value / 1000
    return datetime.fromtimestamp(seconds, UTC)


@pytest.mark.parametrize("folder", ["spot-archive", "spot-archive-with-header"])
def test_every_real_file_keeps_its_rows_times_and_decimals(shared_data: Path, folder: str) -> None:
    for path in sorted((shared_data / "binance" / folder).glob("*.csv")):
        symbol, interval = path.name.split("-")[:2]
        df = archive.read_archive_csv(path, market="spot", symbol=symbol, interval=interval)
        rows = _source_rows(path)
        assert df.schema == klines.polars_schema()
        assert df.height == len(rows), path.name
        assert df["open_time"][0] == _utc(rows[0][0]), path.name
        assert df["open_time"][-1] == _utc(rows[-1][0]), path.name
        assert df["close_time"][-1].replace(microsecond=0) == _utc(rows[-1][6]).replace(
            microsecond=0
        )
        # Exact decimals: the text of the file, not a float's approximation.
        assert Decimal(rows[-1][4]) == df["close"][-1]
        assert Decimal(rows[0][10]) == df["taker_buy_quote_volume"][0]
        assert df["trades"][0] == int(rows[0][8])
        assert set(df["source"]) == {"archive"}


def test_ms_and_us_files_meet_without_a_gap(shared_data: Path) -> None:
    folder = shared_data / "binance" / "spot-archive"
    ms = archive.read_archive_csv(
        folder / "BTCUSDT-1h-2024-12.csv", market="spot", symbol="BTCUSDT", interval="1h"
    )
    us = archive.read_archive_csv(
        folder / "BTCUSDT-1h-2025-01.csv", market="spot", symbol="BTCUSDT", interval="1h"
    )
    assert len(_source_rows(folder / "BTCUSDT-1h-2025-01.csv")[0][0]) == 16
    assert (us["open_time"][0] - ms["open_time"][-1]).total_seconds() == 3600
    assert us["open_time"][0] == datetime(2025, 1, 1, tzinfo=UTC)
    # Both units land at ms precision (…59.999), as REST and the websocket send them.
    assert us["close_time"][0].microsecond == 999_000
    assert ms["close_time"][0].microsecond == 999_000


def test_header_detected_by_content_and_outage_bar_stays_missing(shared_data: Path) -> None:
    path = shared_data / "binance" / "spot-archive-with-header" / "BTCUSDT-1h-2023-03.csv"
    df = archive.read_archive_csv(path, market="spot", symbol="BTCUSDT", interval="1h")
    assert df.height == 743
    assert datetime(2023, 3, 24, 13, tzinfo=UTC) not in set(df["open_time"])
    noon = df.filter(df["open_time"] == datetime(2023, 3, 24, 12, tzinfo=UTC))
    # The cut-short close_time is kept as sent, never derived from open_time.
    assert noon["close_time"][0] == datetime(2023, 3, 24, 12, 39, 41, 646000, tzinfo=UTC)
    assert invariant_violations(df) == {}


def test_header_without_known_names_is_still_detected() -> None:
    body = b"a,b,c,d,e,f,g,h,i,j,k,l\n1730419200000,1.0,2.0,0.5,1.5,10,1730422799999,15,3,5,7,0\n"
    df = archive.read_archive_csv(body, market="usdm", symbol="BTCUSDT", interval="1h")
    assert df.height == 1 and df["market"][0] == "usdm"


def test_zip_archive_and_matching_checksum(shared_data: Path) -> None:
    csv = shared_data / "binance" / "spot-archive" / "ETHUSDT-1h-2024-11.csv"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.write(csv, csv.name)
    data = buffer.getvalue()
    archive.verify_checksum(data, f"{hashlib.sha256(data).hexdigest()}  {csv.name}", what="x")
    df = archive.read_archive_csv(data, market="spot", symbol="ETHUSDT", interval="1h")
    assert df.height == len(_source_rows(csv))


def test_checksum_mismatch_is_rejected_naming_the_file() -> None:
    with pytest.raises(archive.ChecksumMismatch, match=r"BTCUSDT-1h-2024-11\.zip.*does not match"):
        archive.verify_checksum(b"data", "0" * 64 + "  x.zip", what="BTCUSDT-1h-2024-11.zip")


def test_mixed_time_units_in_one_file_are_refused() -> None:
    body = (
        b"1730419200000,1,2,0.5,1.5,10,1730422799999,15,3,5,7,0\n"
        b"1730422800000000,1,2,0.5,1.5,10,1730426399999999,15,3,5,7,0\n"
    )
    with pytest.raises(KlineParseError, match="digit counts"):
        archive.read_archive_csv(body, market="spot", symbol="BTCUSDT", interval="1h")


def test_bad_value_names_row_and_column() -> None:
    body = (
        b"1730419200000,1,2,0.5,1.5,10,1730422799999,15,3,5,7,0\n"
        b"1730422800000,1,two,0.5,1.5,10,1730426399999,15,3,5,7,0\n"
    )
    with pytest.raises(KlineParseError, match=r"line 2, field 'high'.*'two'"):
        archive.read_archive_csv(body, market="spot", symbol="BTCUSDT", interval="1h")


def test_invariant_violations_are_counted_not_dropped() -> None:
    body = (
        b"1730419200000,1,0.5,2,1.5,10,1730422799999,15,3,5,7,0\n"  # high < low
        b"1730422800000,1,2,0.5,1.5,-1,1730426399999,15,3,5,7,0\n"  # negative volume
        b"1730426400123,1,2,0.5,1.5,1,1730426300000,15,3,5,7,0\n"  # off grid, closes before open
    )
    df = archive.read_archive_csv(body, market="spot", symbol="BTCUSDT", interval="1h")
    assert df.height == 3
    assert invariant_violations(df) == {
        "high_below_low": 1,
        "negative_volume": 1,
        "off_interval_grid": 1,
        "close_before_open": 1,
    }


def test_archive_names_and_urls() -> None:
    name = archive.parse_archive_name("BTCUSDT-1h-2024-11.zip")
    assert (name.symbol, name.interval, name.period) == ("BTCUSDT", "1h", "2024-11")
    assert archive.archive_url("http://h", "usdm", "BTCUSDT", "1m", "2024-11-05") == (
        "http://h/data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-11-05.zip"
    )
    with pytest.raises(Exception, match="not a Binance kline archive name"):
        archive.parse_archive_name("prices.csv")
