"""Benchmark of the load path: lake parquet -> raw.binance_klines, against a bare COPY.

    .venv/bin/python bench/bench_load.py [--rows 1000000] [--symbols 20]

Starts its own private stack (PostgreSQL + moto S3 in a temporary KLINEHOUSE_HOME),
writes `--rows` synthetic 1m klines to the lake (day-partitioned zstd parquet), then
in the same run times:

1. ours: list the lake objects, read them, COPY into the staging table and
   `INSERT … ON CONFLICT` into an empty raw.binance_klines (`load_lake_objects`);
2. baseline: a bare COPY of the same rows (already in memory) into an empty table
   of the same shape and keys (`LIKE raw.binance_klines INCLUDING ALL`);
3. the reload of the same lake objects into the now full raw table (every row a
   conflict, nothing changed).

Prints rows/s of each and the ratio ours / bare (goal >= 0.6).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def synthetic_klines(rows: int, symbols: int) -> object:
    """`rows` 1m klines over `symbols` series, exact decimals, built vectorised."""
    import polars as pl

    from klinehouse import klines

    per_symbol = -(-rows // symbols)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    i = pl.int_range(0, rows, eager=True)
    base = pl.DataFrame({"i": i}).with_columns(
        (pl.col("i") // per_symbol).alias("s"), (pl.col("i") % per_symbol).alias("k")
    )

    def price(offset: int) -> pl.Expr:
        cents = (pl.col("k") * 7919 + pl.col("s") * 104729 + offset) % 1_000_000 + 3_000_000_000
        return cents.cast(pl.Decimal(38, 0)) * pl.lit(Decimal("0.00001"), dtype=klines.DECIMAL)

    open_time = pl.lit(start) + pl.duration(minutes=pl.col("k"))
    df = base.select(
        pl.lit("spot").alias("market"),
        pl.format("SYM{}USDT", pl.col("s")).alias("symbol"),
        pl.lit("1m").alias("interval"),
        open_time.alias("open_time"),
        (open_time + pl.duration(milliseconds=59_999)).alias("close_time"),
        price(0).alias("open"),
        (price(0) + pl.lit(Decimal("1.5"), dtype=klines.DECIMAL)).alias("high"),
        (price(0) - pl.lit(Decimal("1.5"), dtype=klines.DECIMAL)).alias("low"),
        price(17).alias("close"),
        price(31).alias("volume"),
        price(43).alias("quote_volume"),
        (pl.col("k") % 5000 + 1).alias("trades"),
        price(59).alias("taker_buy_base_volume"),
        price(71).alias("taker_buy_quote_volume"),
        pl.lit("archive").alias("source"),
    )
    return df.cast(dict(klines.polars_schema()))  # type: ignore[arg-type]


def main() -> None:
    from devstack.stack.private import private_stack

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=20)
    args = parser.parse_args()

    with private_stack("bench-load-"):
        import psycopg
        from psycopg import sql

        from extract import lake_store
        from extract.importers import load_lake_objects
        from extract.load import copy_frame
        from klinehouse.settings import get_settings

        settings = get_settings()
        url = settings.require_database_url()
        df = synthetic_klines(args.rows, args.symbols)
        t = time.perf_counter()
        objects = lake_store.write_frame(df)  # type: ignore[arg-type]
        write_s = time.perf_counter() - t
        print(f"rows {df.height:,} in {len(objects)} lake objects (written in {write_s:.1f}s)")  # type: ignore[attr-defined]

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
            conn.execute("DROP TABLE IF EXISTS bench.bare")
            conn.execute("CREATE TABLE bench.bare (LIKE raw.binance_klines INCLUDING ALL)")
            conn.execute("CHECKPOINT")

        keys = lake_store.prefix_object_keys("klines")
        t = time.perf_counter()
        lake_store.read_objects(keys)
        read_s = time.perf_counter() - t

        # Ours, forced through the stage (COPY -> temp table -> INSERT ... ON CONFLICT).
        t = time.perf_counter()
        staged = load_lake_objects(keys, direct_copy=False)
        staged_s = time.perf_counter() - t
        assert staged.inserted == df.height, staged  # type: ignore[attr-defined]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE raw.binance_klines")
            conn.execute("VACUUM ANALYZE raw.binance_klines")

        # Ours as `klinehouse load` runs it: empty key ranges go straight to raw by COPY.
        t = time.perf_counter()
        ours = load_lake_objects(keys)
        ours_s = time.perf_counter() - t
        assert ours.inserted == df.height, ours  # type: ignore[attr-defined]

        with psycopg.connect(url) as conn:
            t = time.perf_counter()
            with conn.transaction():
                copy_frame(conn, sql.Identifier("bench", "bare"), df)  # type: ignore[arg-type]
            bare_s = time.perf_counter() - t
            bare_rows = conn.execute("SELECT count(*) FROM bench.bare").fetchone()
        assert bare_rows == (df.height,), bare_rows  # type: ignore[attr-defined]

        t = time.perf_counter()
        again = load_lake_objects(keys)
        reload_s = time.perf_counter() - t
        assert again.changed == 0, again

        n = df.height  # type: ignore[attr-defined]
        print(f"lake read alone ({len(keys)} objects)  : {read_s:.1f}s")
        print(
            f"ours, staged upsert (lake->stage->raw) : {n / staged_s:>10,.0f} rows/s ({staged_s:.1f}s)"
        )
        print(
            f"ours, as `load` runs (empty ranges COPY): {n / ours_s:>10,.0f} rows/s ({ours_s:.1f}s)"
        )
        print(
            f"bare COPY into empty keyed table       : {n / bare_s:>10,.0f} rows/s ({bare_s:.1f}s)"
        )
        print(
            f"ratio staged / bare                    : {bare_s / staged_s:>10.2f}   (goal >= 0.6)"
        )
        print(f"ratio as-run / bare                    : {bare_s / ours_s:>10.2f}   (goal >= 0.6)")
        print(
            f"reload same rows (all conflicts)       : {n / reload_s:>10,.0f} rows/s ({reload_s:.1f}s) {again}"
        )


if __name__ == "__main__":
    main()
