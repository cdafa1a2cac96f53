"""`klinehouse transform` on the real archive with the 2023-03-24 outage, and its errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from klinehouse.cli import main
from klinehouse.settings import get_settings


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
