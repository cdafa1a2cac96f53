"""Benchmark of the dbt warehouse: a full refresh against an incremental run, in one run.

    .venv/bin/python bench/bench_dbt.py [--series 20] [--bars 20000]

Starts its own private stack (PostgreSQL + moto S3 in a temporary KLINEHOUSE_HOME,
as tests/conftest.py does), loads `--series` synthetic 1h series of `--bars` bars
each through extract.load.load_frame, then times, with dbt in-process
(transform.runner.run_dbt, imports and a first parse paid before timing):

1. `dbt run --full-refresh` (the baseline: every model from scratch);
2. `dbt run` after one new bar per series (the incremental marts recompute only the
   last window);

and prints both wall times, the sum of dbt's per-model execution times (the SQL
alone, without dbt's fixed per-invocation cost), and the ratios. Models only:
`dbt build` also runs the data tests, which scan whole tables either way. Last, the
serving read of marts.candle_features_latest (computed at query time) against the
same rows from the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

START = datetime(2022, 1, 1, tzinfo=UTC)
STEP = timedelta(hours=1)


def synthetic_klines(series: int, bars: int, *, first: int = 0, seed: int = 7):  # -> pl.DataFrame
    """Random-walk 1h klines: BTCUSDT plus `series - 1` other symbols, bars first..first+bars."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed + first)
    frames = []
    for s in range(series):
        symbol = "BTCUSDT" if s == 0 else f"SYM{s:02d}USDT"
        steps = rng.normal(0, 0.004, bars)
        close = np.round(100.0 * (s + 1) * np.exp(np.cumsum(steps)), 4)
        open_ = np.concatenate([[close[0]], close[:-1]])
        spread = np.abs(rng.normal(0, 0.002, bars))
        high = np.round(np.maximum(open_, close) * (1 + spread), 4)
        low = np.round(np.minimum(open_, close) * (1 - spread), 4)
        volume = np.round(rng.gamma(2.0, 50.0, bars), 4)
        taker = np.round(volume * rng.uniform(0.2, 0.8, bars), 4)
        open_time = [START + (first + i) * STEP for i in range(bars)]
        frames.append(
            pl.DataFrame(
                {
                    "market": "spot",
                    "symbol": symbol,
                    "interval": "1h",
                    "open_time": open_time,
                    "close_time": [t + STEP - timedelta(milliseconds=1) for t in open_time],
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": volume,
                    "quote_volume": np.round(volume * close, 4),
                    "trades": rng.integers(100, 10_000, bars),
                    "taker_buy_base_volume": taker,
                    "taker_buy_quote_volume": np.round(taker * close, 4),
                    "source": "archive",
                }
            )
        )
    return pl.concat(frames)


def _model_times() -> dict[str, float]:
    from transform.runner import target_dir

    results = json.loads((target_dir() / "run_results.json").read_text())["results"]
    return {
        r["unique_id"].rsplit(".", 1)[-1]: r["execution_time"]
        for r in results
        if r["unique_id"].startswith("model.")
    }


def _model_seconds() -> float:
    return sum(_model_times().values())


def _timed_run(args: list[str]) -> tuple[float, float]:
    from transform.runner import run_dbt

    started = time.perf_counter()
    run_dbt(args)
    return time.perf_counter() - started, _model_seconds()


def _time_latest_view(url: str, series: int) -> None:
    """Serving's read: the newest features of every series, from the view (computed at
    query time from raw) against the same rows from the incremental table."""
    import statistics

    import psycopg

    queries = {
        "view  marts.candle_features_latest": "SELECT * FROM marts.candle_features_latest"
        " WHERE market = 'spot' AND interval = '1h'",
        "table marts.candle_features (newest row per symbol)": "SELECT DISTINCT ON (symbol) *"
        " FROM marts.candle_features WHERE market = 'spot' AND interval = '1h'"
        " ORDER BY symbol, open_time DESC",
    }
    timings = {}
    with psycopg.connect(url) as conn:
        for name, statement in queries.items():
            samples = []
            for _ in range(5):
                started = time.perf_counter()
                rows = conn.execute(statement).fetchall()
                samples.append(time.perf_counter() - started)
            assert len(rows) == series, (name, len(rows))
            timings[name] = statistics.median(samples)
            print(f"latest features {name}: {timings[name] * 1000:8.1f} ms (median of 5)")
    view, table = timings.values()
    print(f"ratio view/table: {view / table:.1f}x (the view is fresh without a dbt run)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--bars", type=int, default=20_000)
    options = parser.parse_args()

    from devstack.stack.private import private_stack

    with private_stack("bench-dbt-") as settings:
        url = settings.require_database_url()
        from extract.load import load_frame
        from transform.runner import run_dbt

        t0 = time.perf_counter()
        history = synthetic_klines(options.series, options.bars)
        stats = load_frame(history, url=url)
        print(
            f"loaded {stats.inserted:,} synthetic 1h klines "
            f"({options.series} series x {options.bars:,} bars) in {time.perf_counter() - t0:.1f}s"
        )
        run_dbt(["parse"])  # dbt's imports and the project parse: paid before either timing

        full_wall, full_sql = _timed_run(["run", "--full-refresh"])
        full_times = sorted(_model_times().items(), key=lambda item: -item[1])
        print(
            f"full refresh   dbt run --full-refresh : {full_wall:7.2f}s wall, {full_sql:7.2f}s in models"
        )

        new_bars = synthetic_klines(options.series, 1, first=options.bars)
        assert load_frame(new_bars, url=url).inserted == options.series
        inc_wall, inc_sql = _timed_run(["run"])
        print(
            f"incremental    dbt run (+1 bar/series): {inc_wall:7.2f}s wall, {inc_sql:7.2f}s in models"
        )

        times = sorted(_model_times().items(), key=lambda item: -item[1])
        print("  full refresh per model: " + ", ".join(f"{n} {t:.2f}s" for n, t in full_times))
        print("  incremental per model:  " + ", ".join(f"{n} {t:.2f}s" for n, t in times))
        print(
            f"ratio incremental/full: {inc_wall / full_wall:.1%} wall, "
            f"{inc_sql / full_sql:.1%} in models (goal <= 10%)"
        )
        _time_latest_view(url, options.series)
    return 0


if __name__ == "__main__":
    sys.exit(main())
