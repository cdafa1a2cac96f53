"""The quality gate's queries over a one-day window at several warehouse sizes.

    .venv/bin/python bench/explain_validate.py [--sizes 200000,1000000] [--series 20]

Per size (synthetic 1m series loaded and the marts built, as bench_scale does):
EXPLAIN (ANALYZE, BUFFERS) of each expectation query the gate runs over a window
(the windowed assets, the SQL expectations of expectations/custom.py with their
batch, the streamed-series summaries) with the rows each read in raw/marts and its
Seq Scans, then `validate --since 1d` timed; a window that reads by key costs the
same at every size.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def _walk(plan: dict[str, Any]) -> tuple[int, list[str]]:
    sys.path.insert(0, str(REPO / "tests"))
    from plans import rows_read, seq_scans

    return rows_read(plan), seq_scans(plan)


def explain_all(url: str, since: str, as_of: str) -> None:
    import psycopg

    from expectations.queries import gate_queries

    for q in gate_queries():
        label, query = f"{q.suite}: {q.check}", q.sql
        with psycopg.connect(url) as conn:
            conn.execute(f"SET search_path = {q.datasource}")
            conn.execute("SELECT set_config('klinehouse.since', %s, false)", (since,))
            conn.execute("SELECT set_config('klinehouse.as_of', %s, false)", (as_of,))
            started = time.perf_counter()
            row = conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS, VERBOSE, FORMAT JSON) " + query
            ).fetchone()
            took = time.perf_counter() - started
        assert row is not None
        read, scans = _walk(row[0][0]["Plan"])
        print(f"  {label:<58} {took * 1000:9.1f} ms {read:>10,} rows read  seq: {scans}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="200000,1000000")
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--plans", action="store_true", help="print each text plan too")
    options = parser.parse_args()

    import bench_scale

    from devstack.stack.private import private_stack
    from devstack.synthetic import START
    from klinehouse.envvars import temporary_environ
    from klinehouse.settings import get_settings
    from transform.runner import run_dbt

    results = []
    with private_stack("explain-validate-") as settings:
        admin = settings.require_database_url()
        for size in (int(s) for s in options.sizes.split(",")):
            bars = size // options.series
            print(f"\n== {size:,} rows: {options.series} series x {bars:,} 1m bars", flush=True)
            url = bench_scale._fresh_database(admin, f"explain_validate_{size}")
            with temporary_environ({"KLINEHOUSE_DATABASE_URL": url}):
                get_settings(fresh=True)
                fig = bench_scale.Figures(size)
                bench_scale.measure_load(url, fig, options.series, bars)
                run_dbt(["run", "--full-refresh"])
                import psycopg

                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("ANALYZE")
                as_of = START + timedelta(minutes=bars + 1)
                since = as_of - timedelta(days=1)
                explain_all(url, since.isoformat(), as_of.isoformat())
                from expectations.gate import validate

                validate("1d", as_of=as_of, suites=["raw_schema"])  # imports, sync: untimed
                started = time.perf_counter()
                report = validate("1d", as_of=as_of)
                took = time.perf_counter() - started
                print(f"  validate --since 1d: {took:.2f} s, success {report.success}")
                if not report.success:
                    print(report.summary())
                results.append((size, took))
                from expectations.suites import SUITE_NAMES

                for name in SUITE_NAMES:
                    started = time.perf_counter()
                    validate("1d", as_of=as_of, suites=[name])
                    print(f"  suite {name:<30} {time.perf_counter() - started:7.2f} s")
            get_settings(fresh=True)
    for size, took in results:
        print(f"validate --since 1d at {size:>11,} rows: {took:7.2f} s")
    if len(results) > 1:
        print(f"ratio largest/smallest: {results[-1][1] / results[0][1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
