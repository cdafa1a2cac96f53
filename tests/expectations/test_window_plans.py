"""`validate --since` reads by key: over a one-day window of a warehouse large enough that
the planner would otherwise scan, the plans of the gate's windowed queries hold no Seq Scan
of raw or the marts, and the rows they visit are bounded by the window's rows (not by the
history), a hole in the window included."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from devstack.synthetic import START, random_walk_klines
from expectations.queries import gate_queries
from expectations.window import AS_OF_SETTING, SINCE_SETTING

from ..plans import explain, rows_read, seq_scans

# 144,000 1m klines (+ resampled): a read of a whole mart is a Seq Scan to the planner, and
# one day (1,440 bars a series, 12 %) or one series' history (8 %) a share the key serves.
SERIES, BARS = 12, 12_000
AS_OF = START + timedelta(minutes=BARS)
SINCE = AS_OF - timedelta(days=1)
HOLE = AS_OF - timedelta(hours=3)  # one missing 1m bar of the first series, in the window


def _warehouse(url: str) -> str:
    from extract.load import load_frame
    from transform.runner import run_dbt

    history = random_walk_klines(SERIES, BARS)
    first = history["symbol"].min()
    kept = history.filter((history["open_time"] != HOLE) | (history["symbol"] != first))
    assert load_frame(kept, url=url).inserted == SERIES * BARS - 1
    run_dbt(["run"], database_url=url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return url


def test_windowed_gate_queries_read_the_window_by_key(database_url: str) -> None:
    warehouse = _warehouse(database_url)
    queries = [q for q in gate_queries() if q.windowed]
    assert {q.check for q in queries} >= {
        "expect_gaps_listed_in_candle_gaps",
        "expect_features_warmed_up",
        "expect_no_label_on_last_bar",
    }
    with psycopg.connect(warehouse) as conn:
        window = conn.execute(
            "SELECT count(*) FROM marts.candles WHERE open_time >= %s", (SINCE,)
        ).fetchone()
        history = conn.execute(
            "SELECT count(*) FROM raw.binance_klines WHERE symbol = (SELECT min(symbol) "
            "FROM raw.binance_klines)"
        ).fetchone()
        gaps = conn.execute(
            "SELECT count(*) FROM marts.candle_gaps WHERE gap_start >= %s", (SINCE,)
        ).fetchone()
    assert window and history and gaps == (1,)  # the hole is in the window
    problems = []
    for q in queries:
        with psycopg.connect(warehouse) as conn:
            conn.execute(f"SET search_path = {q.datasource}")
            conn.execute("SELECT set_config(%s, %s, false)", (SINCE_SETTING, SINCE.isoformat()))
            conn.execute("SELECT set_config(%s, %s, false)", (AS_OF_SETTING, AS_OF.isoformat()))
            plan = explain(conn, q.sql)
        # The window's rows a few times over (asset, a DISTINCT of its series, per-series
        # probes); the hole's probe of candle_gaps reads its series' raw history once.
        bound = 3 * window[0] + (history[0] if "gaps" in q.check else 0)
        if seq_scans(plan) or rows_read(plan) > bound:
            problems.append(
                f"{q.suite} {q.check}: {seq_scans(plan)}, {rows_read(plan):,} > {bound:,}"
            )
    assert not problems, "\n".join(problems)
