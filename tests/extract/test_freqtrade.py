"""freqtrade files: names, exact numbers, derived close_time, NULL for what they lack."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from extract.freqtrade import parse_freqtrade_name, read_freqtrade


def test_real_json_file(shared_data: Path) -> None:
    path = shared_data / "freqtrade-json" / "ETH_USDT-1h.json"
    source = json.loads(path.read_text(), parse_float=Decimal)
    df = read_freqtrade(path, market="spot")
    assert df.height == len(source) == 10_235
    assert (df["symbol"][0], df["interval"][0], df["source"][0]) == ("ETHUSDT", "1h", "import")
    assert df["open_time"][0] == datetime.fromtimestamp(source[0][0] / 1000, UTC)
    assert df["open_time"][-1] == datetime(2023, 3, 3, 10, tzinfo=UTC)
    assert df["close_time"][0] - df["open_time"][0] == timedelta(hours=1) - timedelta(
        milliseconds=1
    )
    assert df["high"][-1] == source[-1][2]
    assert df["volume"][5] == source[5][5]
    for column in ("quote_volume", "trades", "taker_buy_base_volume", "taker_buy_quote_volume"):
        assert df[column].null_count() == df.height


@pytest.mark.parametrize("suffix", [".feather", ".parquet"])
def test_columnar_files(tmp_path: Path, suffix: str) -> None:
    frame = pl.DataFrame(
        {
            "date": [datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 0, 5, tzinfo=UTC)],
            "open": [42000.1, 0.00001234],
            "high": [42100.5, 0.00001300],
            "low": [41900.0, 0.00001200],
            "close": [42050.25, 0.00001250],
            "volume": [12.5, 1e6],
        }
    )
    path = tmp_path / f"PEPE_USDT_USDT-5m-futures{suffix}"
    frame.write_ipc(path) if suffix == ".feather" else frame.write_parquet(path)
    df = read_freqtrade(path, market="usdm")
    assert df["symbol"].to_list() == ["PEPEUSDT", "PEPEUSDT"]
    assert df["interval"][0] == "5m"
    assert df["open"].to_list() == [Decimal("42000.1"), Decimal("0.00001234")]
    assert df["close_time"][1] == datetime(2024, 1, 1, 0, 9, 59, 999000, tzinfo=UTC)


def test_names() -> None:
    assert parse_freqtrade_name("BTC_USDT-1h.json") == ("BTCUSDT", "1h")
    assert parse_freqtrade_name("BTC_USDT_USDT-1M-futures.feather") == ("BTCUSDT", "1M")
    with pytest.raises(Exception, match="not a freqtrade data file name"):
        parse_freqtrade_name("btc.json")


def test_malformed_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-1h.json"
    path.write_text("[[1640995200000, 1, 2, 3]]")
    with pytest.raises(Exception, match=r"BTC_USDT-1h\.json.*expected a list"):
        read_freqtrade(path, market="spot")
