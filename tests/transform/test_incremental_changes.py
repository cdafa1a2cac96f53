"""An incremental run carries through whatever raw's change log names — new bars, a
kline revised to invalid OHLC, a deleted kline — exactly as a full refresh would, and
reads raw and the marts by key only: pg_stat_user_tables' seq_scan counters, and the
plans of the compiled increments and their pre-hook deletes, where every scan of raw or
a mart is bounded by symbol (a BTCUSDT change names every symbol of its market and
interval rather than reading them all by market, interval and time)."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import polars as pl
import psycopg

from devstack.synthetic import START, random_walk_klines
from transform.runner import run_dbt, target_dir

from ..plans import seq_scans

MARTS = ("candles", "candle_features", "candle_labels")
SCANNED = ("raw.binance_klines", *(f"marts.{m}" for m in MARTS))
# 90,000 1m klines (+ resampled): large enough that a full read of raw or of a mart is a
# sequential scan to the planner, and that the 1d buckets of 1m bars the increment
# re-reads (~5 series-days of ~62) stay a share the key serves (at 12,000 bars, ~20 %,
# ANALYZE's sample now and then tipped that read onto a Seq Scan)
SERIES, BARS = 3, 30_000


def _snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    return {
        mart: conn.execute(
            f"SELECT * FROM marts.{mart} ORDER BY market, symbol, interval, open_time"
        ).fetchall()
        for mart in MARTS
    }


def _read_seq_scans(conn: psycopg.Connection) -> dict[str, int]:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    rows = conn.execute(
        "SELECT schemaname || '.' || relname, seq_scan FROM pg_stat_user_tables"
        " WHERE schemaname || '.' || relname = ANY(%s)",
        (list(SCANNED),),
    ).fetchall()
    return dict(rows)


def _seq_scans(
    conn: psycopg.Connection, settle: float = 1.5, within: float = 20.0
) -> dict[str, int]:
    """The counters once every backend's pending statistics have reached them. Backends
    flush their counts up to a second after going idle, and a closed one as it exits, so
    a read right after other work can miss scans that land later (this very connection's
    included): read until two reads `settle` seconds apart agree."""
    conn.execute("SELECT pg_stat_force_next_flush()")
    deadline = time.monotonic() + within
    last = _read_seq_scans(conn)
    while True:
        time.sleep(settle)
        now = _read_seq_scans(conn)
        if now == last or time.monotonic() > deadline:
            return now
        last = now


# One arm of macro in_ranges: `(market = '…' and interval = '…' [and symbol in (…)] and
# open_time between …`, not reaching into the next arm.
_ARM = re.compile(r"\((?:\w+\.)?market = '(?:(?!market = ').)*?open_time between", re.S)


def _increment_statements(model: str) -> dict[str, str]:
    """The SELECT of a model's last compiled increment and its pre-hook's DELETE."""
    (path,) = target_dir().glob(f"compiled/*/models/marts/{model}.sql")
    select = path.read_text()
    found = re.search(r"/\* klinehouse_increment (.*?) \*/", select, re.S)
    assert found, f"{model}: no increment marker in its compiled SQL"
    delete = json.loads(found.group(1))["delete"]
    assert delete and delete != "false", f"{model}: the run was not an increment"
    return {
        f"{model} select": select,
        f"{model} delete": f"DELETE FROM marts.{model} WHERE {delete}",
    }


def _unkeyed(conn: psycopg.Connection) -> dict[str, list[str]]:
    """Per statement of the last increment (every mart's SELECT and pre-hook DELETE):
    the range arms (macro in_ranges) that name no symbol, i.e. read every series of a
    market and interval over a span, and the full scans of raw or a mart in its plan."""
    found = {}
    for model in MARTS:
        for name, statement in _increment_statements(model).items():
            arms = re.findall(_ARM, statement)
            assert arms, f"{name}: no key range in it?"
            ((plan,),) = conn.execute(f"EXPLAIN (FORMAT JSON, VERBOSE) {statement}").fetchall()  # type: ignore[call-overload]
            found[name] = [
                *(f"no symbol in: {a[:90]}" for a in arms if "symbol in (" not in a),
                *(f"Seq Scan of {t}" for t in seq_scans(plan[0]["Plan"])),
            ]
    return found


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

        # Five new bars per series (completing a 5m bucket: a resampled bar), ...
        assert load_frame(random_walk_klines(SERIES, 5, first=BARS), url=warehouse).inserted == 15
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
        unkeyed = _unkeyed(conn)

    # Every read and delete of the increment (BTCUSDT's change included) is by symbol.
    assert not any(unkeyed.values()), "\n".join(
        f"{name}: {problem}" for name, problems in unkeyed.items() for problem in problems
    )

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
    # +5 1m bars and one 5m bar per series; -2 native 1m bars and the 5m, 15m, 1h, 4h, 1d
    # buckets holding them
    assert len(full["candle_features"]) == len(before["candle_features"]) + 3 * 6 - 2 - 2 * 5
