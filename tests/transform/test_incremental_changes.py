"""An incremental run carries through whatever raw's change log names — new bars, a
kline revised to invalid OHLC, a deleted kline — exactly as a full refresh would, and
reads raw and the marts by key only (pg_stat_user_tables' seq_scan counters)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import psycopg

from devstack.synthetic import START, random_walk_klines
from transform.runner import run_dbt

MARTS = ("candles", "candle_features", "candle_labels")
SCANNED = ("raw.binance_klines", *(f"marts.{m}" for m in MARTS))
SERIES, BARS = 3, 12_000  # 36,000 1m klines (+ resampled): large enough that a full
# read of raw or of a mart is a sequential scan to the planner


def _snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    return {
        mart: conn.execute(
            f"SELECT * FROM marts.{mart} ORDER BY market, symbol, interval, open_time"
        ).fetchall()
        for mart in MARTS
    }


def _seq_scans(conn: psycopg.Connection) -> dict[str, int]:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    rows = conn.execute(
        "SELECT schemaname || '.' || relname, seq_scan FROM pg_stat_user_tables"
        " WHERE schemaname || '.' || relname = ANY(%s)",
        (list(SCANNED),),
    ).fetchall()
    return dict(rows)


def _minute(bar: int) -> object:
    return START + timedelta(minutes=bar)


def test_revised_invalid_and_deleted_klines_reach_the_marts_by_key(warehouse: str) -> None:
    from extract.load import load_frame

    history = random_walk_klines(SERIES, BARS)
    assert load_frame(history, url=warehouse).inserted == SERIES * BARS
    run_dbt(["run"])
    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute("ANALYZE")  # what autovacuum does after a build this size
        before = _snapshot(conn)

        # One new bar per series, ...
        assert load_frame(random_walk_klines(SERIES, 1, first=BARS), url=warehouse).inserted == 3
        # ... Binance revising an old SYM0001USDT bar to invalid OHLC (high below close), ...
        invalid_time = _minute(5_003)
        old = history.filter(
            (pl.col("symbol") == "SYM0001USDT") & (pl.col("open_time") == invalid_time)
        )
        assert old.height == 1
        revised = old.with_columns(high=pl.col("close") / 2)
        assert load_frame(revised, url=warehouse).revised == 1
        # ... and an old BTCUSDT bar deleted (every series' btc_log_return_1 changes).
        deleted_time = _minute(8_000)
        assert (
            conn.execute(
                "DELETE FROM raw.binance_klines WHERE symbol = 'BTCUSDT' AND open_time = %s",
                (deleted_time,),
            ).rowcount
            == 1
        )

        scans = _seq_scans(conn)
        run_dbt(["run"])
        after_scans = _seq_scans(conn)
        incremental = _snapshot(conn)

    # Read by key: no mart and not raw was scanned in full by the incremental run.
    assert set(scans) == set(SCANNED)
    assert after_scans == scans, f"sequential scans during an incremental run: {after_scans}"

    run_dbt(["run", "--full-refresh"])
    with psycopg.connect(warehouse) as conn:
        full = _snapshot(conn)
        full_scans = _seq_scans(conn)
    assert full_scans["raw.binance_klines"] > scans["raw.binance_klines"]  # the counter works
    for mart in MARTS:
        assert incremental[mart] == full[mart], f"marts.{mart} differs from a full refresh"

    # The changes did reach the marts (not equal only because nothing moved).
    def keys(rows: list[tuple], symbol: str, interval: str) -> set[object]:
        return {r[3] for r in rows if r[1] == symbol and r[2] == interval}

    assert invalid_time in keys(before["candles"], "SYM0001USDT", "1m")
    assert invalid_time not in keys(full["candles"], "SYM0001USDT", "1m")
    assert invalid_time - timedelta(minutes=3) not in keys(full["candles"], "SYM0001USDT", "5m")
    assert deleted_time not in keys(full["candles"], "BTCUSDT", "1m")
    assert deleted_time in keys(before["candles"], "BTCUSDT", "1m")
    # +1 bar per series; -2 native 1m bars and the 5m, 15m, 1h, 4h, 1d buckets holding them
    assert len(full["candle_features"]) == len(before["candle_features"]) + 3 - 2 - 2 * 5
