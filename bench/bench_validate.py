"""Benchmark of the quality gate: whole table against a one-day window, in one run.

    .venv/bin/python bench/bench_validate.py [--series 20] [--bars 50000] [--repeat 2]

Starts its own private stack (PostgreSQL + moto S3 in a temporary KLINEHOUSE_HOME,
as tests/conftest.py does), writes `--series` x `--bars` synthetic 1m klines
(1,000,000 rows by default, ending a minute ago) into raw.binance_klines, then
times `expectations.gate.validate` on the raw suites (GX's imports and the first
project sync paid before timing; best of `--repeat`):

1. the whole table;
2. a one-day window (`since` = now - 1 day);
3. the same window once `open_time` has an index of its own (the migration's key
   leads with market, symbol, interval; TimescaleDB's hypertable has one);
4. the baseline: the same row checks as one hand-written SQL pass over the whole
   table (no GX, no Data Docs).

and prints the times and the ratios.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RAW_SUITES = ["raw_schema", "raw_klines", "raw_streamed_series"]

# Consistent bars (low <= open, close <= high), positive prices, volumes >= 0.
_FILL = """
INSERT INTO raw.binance_klines (market, symbol, interval, open_time, close_time, open, high,
    low, close, volume, quote_volume, trades, taker_buy_base_volume, taker_buy_quote_volume,
    source)
SELECT 'spot', 'SYM' || s || 'USDT', '1m', t, t + interval '59.999 seconds',
       p, p * 1.002, p * 0.998, p * 1.001, v, v * p, 100, v / 2, v * p / 2, 'archive'
FROM generate_series(1, %(series)s) AS s,
     generate_series(date_trunc('minute', now()) - interval '1 minute' * %(bars)s,
                     date_trunc('minute', now()) - interval '1 minute', interval '1 minute') AS t,
     LATERAL (SELECT round((100 * s + random())::numeric, 8) AS p,
                     round((random() * 100)::numeric, 8) AS v) AS x
"""

# What the raw suites check per row and per key, as one bare SQL pass.
_BASELINE = """
SELECT count(*) FILTER (WHERE high < low),
       count(*) FILTER (WHERE least(open, high, low, close) <= 0),
       count(*) FILTER (WHERE least(volume, quote_volume, taker_buy_base_volume,
                                    taker_buy_quote_volume) < 0),
       count(*) FILTER (WHERE open_time > now()),
       count(*) FILTER (WHERE market IS NULL OR symbol IS NULL OR interval IS NULL
                              OR open_time IS NULL OR close_time IS NULL OR source IS NULL),
       (SELECT count(*) FROM (SELECT 1 FROM raw.binance_klines
                              GROUP BY market, symbol, interval, open_time
                              HAVING count(*) > 1) AS d)
FROM raw.binance_klines
"""


def _best(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--bars", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=2)
    options = parser.parse_args()

    from devstack.stack.private import private_stack
    from klinehouse.db import connect

    with private_stack("bench-validate-") as settings:
        url = settings.require_database_url()
        t0 = time.perf_counter()
        with connect(url) as conn:
            conn.execute(_FILL, {"series": options.series, "bars": options.bars})
            conn.commit()
        with connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE raw.binance_klines")
            rows = conn.execute("SELECT count(*) FROM raw.binance_klines").fetchone()
        assert rows is not None
        print(
            f"wrote {rows[0]:,} synthetic 1m klines ({options.series} series x "
            f"{options.bars:,} bars) in {time.perf_counter() - t0:.1f}s"
        )

        from expectations.gate import validate

        def gate(since: str | None) -> Callable[[], object]:
            def run() -> object:
                report = validate(since, url=url, suites=RAW_SUITES)
                assert report.success, report.summary()
                return report

            return run

        gate("1d")()  # GX's imports, the project sync and the first Data Docs: not timed

        whole = _best(options.repeat, gate(None))
        print(f"gate, whole table          : {whole:7.2f}s")
        window = _best(options.repeat, gate("1d"))
        print(f"gate, one-day window       : {window:7.2f}s")
        # Why migration 0003 indexes open_time: the same window without that index.
        with connect(url, autocommit=True) as conn:
            conn.execute("DROP INDEX raw.binance_klines_open_time_idx")
            conn.execute("ANALYZE raw.binance_klines")
        unindexed = _best(options.repeat, gate("1d"))
        print(f"gate, window, no time index: {unindexed:7.2f}s")

        def baseline() -> object:
            with connect(url) as conn:
                return conn.execute(_BASELINE).fetchone()

        bare = _best(options.repeat, baseline)
        print(f"bare SQL pass, whole table : {bare:7.2f}s (baseline: no GX, no Data Docs)")
        print(
            f"ratio window/whole: {window / whole:.1%} ({window / whole:.3f}); "
            f"without the open_time index {unindexed / whole:.1%}; "
            f"gate whole/bare SQL: {whole / bare:.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
