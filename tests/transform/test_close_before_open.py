"""Issue 15.1: a real maintenance bar that closes before it opens never stops the transform.

raw keeps it as Binance sent it, staging flags it (`is_close_before_open`), and
marts.candles leaves it out; `dbt build` (what `klinehouse transform` runs) succeeds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from transform.runner import run_dbt


def test_bar_closing_before_it_opens_is_kept_flagged_and_left_out_of_candles(
    warehouse: str, shared_data: Path, load_archives, query
) -> None:
    from extract.load import load_frame

    folder = shared_data / "binance" / "spot-archive-with-header"
    assert load_archives(warehouse, [folder / "BTCUSDT-1h-2023-03.csv"]) == 743
    # The real maintenance bar (zero volume, flat), as real archives also hold it: its
    # close_time stamped before its own open_time.
    opened = datetime(2023, 3, 24, 12, tzinfo=UTC)
    (stored,) = query(
        warehouse,
        "SELECT volume FROM raw.binance_klines WHERE symbol = 'BTCUSDT' AND open_time = %s",
        opened,
    )
    assert stored[0] == 0
    from extract.archive import read_archive_csv

    month = read_archive_csv(
        folder / "BTCUSDT-1h-2023-03.csv", market="spot", symbol="BTCUSDT", interval="1h"
    )
    bad = month.filter(pl.col("open_time") == opened).with_columns(
        close_time=pl.lit(opened - timedelta(minutes=18, milliseconds=354)).cast(
            month.schema["close_time"]
        )
    )
    assert load_frame(bad, url=warehouse).revised == 1
    # And one as the series' newest bar: serving's latest features must not pick it.
    newest = bad.with_columns(
        open_time=pl.lit(datetime(2023, 4, 1, tzinfo=UTC)).cast(month.schema["open_time"])
    )
    assert load_frame(newest, url=warehouse).inserted == 1

    # raised (a failing data test) before the fix
    run_dbt(["build", "--select", "+candles", "+candle_features_latest"])

    assert query(
        warehouse,
        "SELECT count(*) FROM raw.binance_klines WHERE close_time < open_time",
    ) == [(2,)]
    assert query(
        warehouse,
        "SELECT is_close_before_open FROM staging.stg_binance__klines WHERE open_time = %s",
        opened,
    ) == [(True,)]
    assert query(warehouse, "SELECT count(*) FROM marts.candles WHERE open_time = %s", opened) == [
        (0,)
    ]
    assert query(warehouse, "SELECT count(*) FROM marts.candles") == [(742,)]
    assert query(warehouse, "SELECT open_time FROM marts.candle_features_latest") == [
        (datetime(2023, 3, 31, 23, tzinfo=UTC),)
    ]
