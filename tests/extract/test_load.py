"""Loads through the lake into raw.binance_klines: counts, idempotence, revisions, lake layout."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import psycopg
import pytest

from extract import archive, lake_store
from extract.importers import import_archive, import_archive_run, import_freqtrade_dir
from extract.load import LoadStats, load_frame
from klinehouse import lake
from klinehouse.settings import Settings


def _series_stats(url: str) -> dict[tuple[str, str], tuple[int, datetime, datetime]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT symbol, interval, count(*), min(open_time), max(open_time) "
            "FROM raw.binance_klines GROUP BY 1, 2"
        ).fetchall()
    return {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}


def _expected_from_files(
    files: list[Path],
) -> dict[tuple[str, str], tuple[int, datetime, datetime]]:
    out: dict[tuple[str, str], tuple[int, datetime, datetime]] = {}
    for path in files:
        symbol, interval = path.name.split("-")[:2]
        times = [
            int(line.split(",", 1)[0])
            for line in path.read_text().splitlines()
            if line[:1].isdigit()
        ]
        stamps = [datetime.fromtimestamp(t / (1e6 if t > 10**14 else 1e3), UTC) for t in times]
        count, first, last = out.get((symbol, interval), (0, stamps[0], stamps[-1]))
        out[(symbol, interval)] = (
            count + len(stamps),
            min(first, stamps[0]),
            max(last, stamps[-1]),
        )
    return out


def test_every_archive_series_loads_with_source_counts_and_times(
    shared_data: Path, warehouse: Settings
) -> None:
    folders = [
        shared_data / "binance" / "spot-archive",
        shared_data / "binance" / "spot-archive-with-header",
    ]
    stats = import_archive(folders)
    files = sorted(p for f in folders for p in f.glob("*.csv"))
    expected = _expected_from_files(files)
    assert _series_stats(warehouse.database_url) == expected
    assert stats == LoadStats(inserted=sum(v[0] for v in expected.values()), revised=0, unchanged=0)
    with psycopg.connect(warehouse.database_url) as conn:
        gap = conn.execute(
            "SELECT count(*) FROM raw.binance_klines WHERE symbol = 'BTCUSDT' "
            "AND open_time = '2023-03-24 13:00+00'"
        ).fetchone()
        noon_close = conn.execute(
            "SELECT close_time, volume FROM raw.binance_klines WHERE symbol = 'BTCUSDT' "
            "AND open_time = '2023-03-24 12:00+00'"
        ).fetchone()
    assert gap == (0,)
    assert noon_close is not None
    assert noon_close[0] == datetime(2023, 3, 24, 12, 39, 41, 646000, tzinfo=UTC)
    # Reloading the same files changes nothing.
    assert import_archive(folders) == LoadStats(0, 0, stats.inserted)


def test_lake_layout_and_manifest(shared_data: Path, warehouse: Settings) -> None:
    path = shared_data / "binance" / "spot-archive" / "ETHUSDT-1h-2024-11.csv"
    summary = import_archive_run([path], load=False)
    assert summary.load == LoadStats()
    keys = lake_store.run_object_keys(summary.run_id)
    assert len(keys) == 1  # 1h candles: one object per month
    assert keys[0].endswith(
        "klines/market=spot/symbol=ETHUSDT/interval=1h/date=2024-11-01/part-0.parquet"
    )
    body = lake.s3_client().get_object(Bucket=warehouse.lake_bucket, Key=keys[0])["Body"].read()
    with pl.Config():
        from io import BytesIO

        import pyarrow.parquet as pq

        meta = pq.ParquetFile(BytesIO(body)).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD"
    # A rerun rewrites the same keys instead of adding objects.
    again = import_archive_run([path], load=False)
    assert sorted(lake_store.run_object_keys(again.run_id)) == sorted(keys)
    assert lake_store.prefix_object_keys("klines/market=spot") == sorted(keys)
    assert lake_store.read_objects(keys).height == 720
    # `klinehouse load --run` path: load what the run wrote.
    from extract.importers import load_lake_objects

    assert load_lake_objects(keys) == LoadStats(720, 0, 0)


def test_revised_row_is_updated_and_counted(shared_data: Path, warehouse: Settings) -> None:
    path = shared_data / "binance" / "spot-archive" / "BTCUSDT-1h-2024-11.csv"
    df = archive.read_archive_csv(path, market="spot", symbol="BTCUSDT", interval="1h")
    assert load_frame(df) == LoadStats(720, 0, 0)
    revised = df.with_columns(
        pl.when(pl.arange(0, df.height) == 10)
        .then(pl.col("volume") + Decimal("1"))
        .otherwise(pl.col("volume"))
        .alias("volume")
    )
    assert load_frame(revised) == LoadStats(0, 1, 719)
    with psycopg.connect(warehouse.database_url) as conn:
        row = conn.execute(
            "SELECT volume FROM raw.binance_klines WHERE open_time = %s", (df["open_time"][10],)
        ).fetchone()
    assert row == (df["volume"][10] + 1,)
    # Duplicates inside one frame collapse (the last wins) instead of failing the statement.
    assert load_frame(pl.concat([df.head(3), revised.head(3)])) == LoadStats(0, 0, 3)


def test_same_candles_from_a_us_archive_and_ms_rest_are_unchanged(
    shared_data: Path, warehouse: Settings
) -> None:
    from extract.rest import rows_to_frame

    path = shared_data / "binance" / "spot-archive" / "BTCUSDT-1h-2025-01.csv"
    rows = [line.split(",") for line in path.read_text().splitlines()[:48]]
    assert len(rows[0][0]) == 16  # the archive sends microseconds
    df = archive.read_archive_csv(path, market="spot", symbol="BTCUSDT", interval="1h")
    assert load_frame(df.head(48)) == LoadStats(48, 0, 0)
    # The same candles as REST sends them: ms integers, decimal strings.
    rest_rows = [
        [int(r[0]) // 1000, *r[1:6], int(r[6]) // 1000, r[7], int(r[8]), r[9], r[10], r[11]]
        for r in rows
    ]
    rest = rows_to_frame(rest_rows, market="spot", symbol="BTCUSDT", interval="1h")
    assert load_frame(rest) == LoadStats(0, 0, 48)


def test_load_on_a_callers_connection_joins_its_transaction(
    shared_data: Path, warehouse: Settings
) -> None:
    path = shared_data / "binance" / "spot-archive" / "ETHUSDT-1h-2024-11.csv"
    df = archive.read_archive_csv(path, market="spot", symbol="ETHUSDT", interval="1h")

    def stored() -> int:
        with psycopg.connect(warehouse.database_url) as conn:
            row = conn.execute("SELECT count(*) FROM raw.binance_klines").fetchone()
        return int(row[0]) if row else -1

    with psycopg.connect(warehouse.database_url, autocommit=True) as conn:
        # Three batches in one outer transaction, then rolled back: nothing stays.
        with pytest.raises(RuntimeError), conn.transaction():
            assert load_frame(df, conn=conn, batch_rows=300) == LoadStats(df.height, 0, 0)
            raise RuntimeError("the caller's later step failed")
        assert stored() == 0
        # The same, committed; a staged revision inside one transaction (the stage of the
        # earlier batch still exists until the outer commit).
        with conn.transaction():
            assert load_frame(df, conn=conn, batch_rows=300) == LoadStats(df.height, 0, 0)
            revised = df.head(400).with_columns(pl.col("volume") + Decimal("1"))
            assert load_frame(revised, conn=conn, batch_rows=300) == LoadStats(0, 400, 0)
    assert stored() == df.height


def test_freqtrade_import_keeps_missing_columns_null(
    shared_data: Path, warehouse: Settings, tmp_path: Path
) -> None:
    shutil.copy(shared_data / "freqtrade-json" / "SOL_USDT-1h.json", tmp_path)
    stats = import_freqtrade_dir(tmp_path, market="spot")
    assert stats == LoadStats(10_235, 0, 0)
    with psycopg.connect(warehouse.database_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(trades), count(quote_volume), min(source), max(source), "
            "min(close_time - open_time) FROM raw.binance_klines WHERE symbol = 'SOLUSDT'"
        ).fetchone()
    assert row is not None
    assert row[:5] == (10_235, 0, 0, "import", "import")
    assert row[5].total_seconds() == pytest.approx(3599.999)


def test_bad_file_is_named_and_others_still_load(
    shared_data: Path, warehouse: Settings, tmp_path: Path
) -> None:
    good = shared_data / "binance" / "spot-archive" / "ETHUSDT-1h-2024-11.csv"
    shutil.copy(good, tmp_path / good.name)
    bad = tmp_path / "ETHUSDT-1h-2024-12.csv"
    bad.write_text("1733011200000,1,2,0.5,oops,10,1733014799999,15,3,5,7,0\n")
    summary = import_archive_run([tmp_path])
    assert summary.load.inserted == 720
    assert len(summary.failures) == 1 and "ETHUSDT-1h-2024-12.csv" in summary.failures[0]
    assert "'close'" in summary.failures[0]


def test_minute_candles_partition_by_day_and_merge_on_rerun(warehouse: Settings) -> None:
    from extract.frames import to_klines

    start = 1_730_419_200_000  # 2024-11-01 00:00 UTC

    def minutes(first: int, count: int) -> pl.DataFrame:
        times = [str(start + 60_000 * i) for i in range(first, first + count)]
        raw = pl.DataFrame(
            {
                "open_time": times,
                **{c: ["1"] * count for c in ("open", "high", "low", "close", "volume")},
            }
        )
        return to_klines(
            raw,
            market="spot",
            symbol="XUSDT",
            interval="1m",
            source="rest",
            time_unit="ms",
            what="t",
        )

    first = lake_store.write_frame(minutes(0, 1500))  # spills into 2024-11-02
    assert [o.date for o in first] == ["2024-11-01", "2024-11-02"]
    second = lake_store.write_frame(minutes(1500, 100))  # same day object, later rows
    assert [(o.date, o.rows) for o in second] == [("2024-11-02", 160)]
    assert lake_store.read_objects([o.key for o in first]).height == 1600
