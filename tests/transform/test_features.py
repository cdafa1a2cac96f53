"""marts.candle_features against an independent polars computation on real Binance data,
plus the contract, the serving view and the grants of the marts."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import polars as pl
import psycopg
import pytest

from klinehouse import features, klines
from transform.runner import run_dbt

STEP = timedelta(hours=1)  # every file used here is 1h


def _polars_features(frame: pl.DataFrame) -> pl.DataFrame:
    """The features of issue 5 written again from their definitions, in polars."""
    series = ["market", "symbol", "interval"]
    df = frame.sort([*series, "open_time"])

    def has(k: int) -> pl.Expr:  # the bar k steps back exists, so the window is gap-free
        return (
            pl.col("open_time").shift(k).over(series) == pl.col("open_time") - k * STEP
        ).fill_null(False)

    def log_return(k: int) -> pl.Expr:
        ratio = pl.col("close_f") / pl.col("close_f").shift(k).over(series)
        return pl.when(has(k)).then(ratio.log())

    change = (pl.col("close") - pl.col("close").shift(1).over(series)).cast(pl.Float64)
    df = df.with_columns(
        close_f=pl.col("close").cast(pl.Float64),
        volume_f=pl.col("volume").cast(pl.Float64),
    ).with_columns(
        log_return_1=log_return(1),
        log_return_4=log_return(4),
        log_return_24=log_return(24),
        gain=pl.when(has(1)).then(change.clip(lower_bound=0)),
        loss=pl.when(has(1)).then((-change).clip(lower_bound=0)),
        has_14=has(14),
        has_23=has(23),
        has_24=has(24),
    )
    g = pl.col("gain").rolling_mean(14).over(series)
    loss = pl.col("loss").rolling_mean(14).over(series)
    vol_mean = pl.col("volume_f").rolling_mean(24).over(series)
    vol_std = pl.col("volume_f").rolling_std(24).over(series)
    df = df.with_columns(
        volatility_24=pl.when("has_24").then(pl.col("log_return_1").rolling_std(24).over(series)),
        rsi_14=pl.when(~pl.col("has_14"))
        .then(None)
        .when(loss == 0)
        .then(100.0)
        .otherwise(100 - 100 / (1 + g / loss)),
        volume_zscore_24=pl.when(pl.col("has_23") & (vol_std > 0)).then(
            (pl.col("volume_f") - vol_mean) / vol_std
        ),
        taker_buy_ratio=pl.when(pl.col("volume") > 0).then(
            pl.col("taker_buy_base_volume").cast(pl.Float64) / pl.col("volume_f")
        ),
        range_pct=(pl.col("high") - pl.col("low")).cast(pl.Float64) / pl.col("close_f"),
        hour_of_day=pl.col("open_time").dt.hour().cast(pl.Int64),
        day_of_week=pl.col("open_time").dt.weekday().cast(pl.Int64),  # 1 = Monday
    )
    btc = df.filter(pl.col("symbol") == "BTCUSDT").select(
        "market", "interval", "open_time", btc_log_return_1="log_return_1"
    )
    df = df.join(btc, on=["market", "interval", "open_time"], how="left")
    return df.select(*klines.KEY, *features.NUMERIC_FEATURES)


def _same(ours: object, theirs: object) -> bool:
    if ours is None or theirs is None:
        return ours is None and theirs is None
    assert isinstance(ours, int | float) and isinstance(theirs, int | float)
    return math.isclose(float(ours), float(theirs), rel_tol=1e-9, abs_tol=1e-12)


def _archive_files(shared_data: Path) -> list[Path]:
    return sorted((shared_data / "binance" / "spot-archive").glob("*.csv")) + sorted(
        (shared_data / "binance" / "spot-archive-with-header").glob("*.csv")
    )


def _read_all(files: list[Path]) -> pl.DataFrame:
    from extract.archive import read_archive_csv

    frames = []
    for path in files:
        symbol, interval = path.name.split("-")[:2]
        frames.append(read_archive_csv(path, market="spot", symbol=symbol, interval=interval))
    return pl.concat(frames)


@pytest.fixture(scope="module")
def built_real(module_warehouse: str, shared_data: Path, load_archives) -> str:
    """BTCUSDT (2023-01…05 with the real outage, 2024-11…2025-05) and ETHUSDT 1h, built."""
    load_archives(module_warehouse, _archive_files(shared_data))
    run_dbt(["build"])
    return module_warehouse


def test_features_match_independent_polars_computation(built_real: str, shared_data: Path) -> None:
    expected = _polars_features(_read_all(_archive_files(shared_data)))
    columns = [*klines.KEY, *features.NUMERIC_FEATURES]
    with psycopg.connect(built_real) as conn:
        rows = conn.execute(
            f"SELECT {', '.join(columns)} FROM marts.candle_features ORDER BY market, symbol, interval, open_time"
        ).fetchall()
    ours = pl.DataFrame(rows, schema=columns, orient="row")
    assert ours.height == expected.height  # one row per candle: all real bars are on the grid

    # A sample: each series' first 30 bars (history too short -> NULL), the bars around
    # the 2023-03-24 outage and the 2023-05 -> 2024-11 hole, and every 53rd bar.
    joined = expected.join(ours, on=list(klines.KEY), how="left", suffix="_ours").with_row_index()
    outage = pl.datetime(2023, 3, 24, 13, time_zone="UTC")
    sample = joined.filter(
        (pl.col("index") % 53 == 0)
        | (pl.int_range(pl.len()).over("symbol") < 30)
        | pl.col("open_time").is_between(outage - timedelta(hours=2), outage + timedelta(hours=30))
        | pl.col("open_time").is_between(
            pl.datetime(2024, 11, 1, time_zone="UTC"), pl.datetime(2024, 11, 2, 2, time_zone="UTC")
        )
    )
    assert sample.height > 300
    mismatches = [
        (row["symbol"], row["open_time"], name, row[f"{name}_ours"], row[name])
        for row in sample.iter_rows(named=True)
        for name in features.NUMERIC_FEATURES
        if not _same(row[f"{name}_ours"], row[name])
    ]
    assert not mismatches, f"{len(mismatches)} differences, first: {mismatches[:5]}"
    # The sample exercised both the NULL edges and real values of every feature.
    for name in features.NUMERIC_FEATURES:
        assert sample[name].null_count() > 0 or name in {"hour_of_day", "day_of_week", "range_pct"}
        assert sample[name].drop_nulls().len() > 100, name
    # The real outage: the hour after 13:00 has no log_return_1, a day later the windows recover.
    after_gap = ours.filter(
        (pl.col("symbol") == "BTCUSDT") & (pl.col("open_time") == outage + STEP)
    ).row(0, named=True)
    assert after_gap["log_return_1"] is None and after_gap["volatility_24"] is None


def test_marts_columns_follow_features_py_and_latest_view_agrees(built_real: str) -> None:
    with psycopg.connect(built_real) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'marts' AND table_name = 'candle_features'"
                " ORDER BY ordinal_position"
            )
        ]
        assert columns == [*klines.KEY, *features.NUMERIC_FEATURES, "ingested_at"]
        label_columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'marts' AND table_name = 'candle_labels'"
            )
        }
        assert set(features.LABELS) <= label_columns
        assert not set(features.NUMERIC_FEATURES) & label_columns  # labels kept apart
        names = ", ".join(features.NUMERIC_FEATURES)
        latest = conn.execute(
            f"SELECT market, symbol, interval, open_time, {names} FROM marts.candle_features_latest"
            " ORDER BY symbol"
        ).fetchall()
        stored = conn.execute(
            f"SELECT DISTINCT ON (symbol) market, symbol, interval, open_time, {names}"
            " FROM marts.candle_features ORDER BY symbol, open_time DESC"
        ).fetchall()
    assert [r[1] for r in latest] == ["BTCUSDT", "ETHUSDT"]
    assert latest == stored
    assert all(value is not None for row in latest for value in row)


def test_reader_selects_marts_and_nothing_in_raw(built_real: str) -> None:
    with psycopg.connect(built_real, autocommit=True) as conn:
        conn.execute("SET ROLE klinehouse_reader")
        for relation in (
            "candles",
            "candle_gaps",
            "candle_features",
            "candle_labels",
            "candle_features_latest",
        ):
            assert conn.execute(f"SELECT count(*) FROM marts.{relation}").fetchone()[0] > 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM raw.binance_klines")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM staging.stg_binance__klines")
