"""EXPLAIN (ANALYZE, BUFFERS) of incremental models' compiled SQL after +1 bar/series.

    .venv/bin/python bench/explain_increment.py [--sizes 200000,1000000] [--series 200]
        [--model candle_features[,candle_labels,candles]] [--new-bars 1] [--summary]

Per size, in a private stack: synthetic 1m series (bench_scale's loader), `dbt run
--full-refresh`, ANALYZE, `--new-bars` new bars per series (5 from a bucket start
complete a 5m bar), then for `candles` `dbt compile -s candles`, and for the models
built on it `dbt run -s candles` (the upstream watermark moves) and `dbt compile`; the
plan of each compiled SELECT (the increment the next `dbt run` would read), printed in
full with its timing, or with `--summary` only its execution time and buffers. Buffers
do not depend on the machine's load: compare them across sizes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def explain(url: str, model: str) -> str:
    import psycopg

    from transform.runner import target_dir

    (compiled,) = target_dir().glob(f"compiled/*/models/marts/{model}.sql")
    query = compiled.read_text()
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query}").fetchall()  # type: ignore[call-overload]
    return "\n".join(str(r[0]) for r in rows)


def summary(plan: str) -> str:
    """The statement's execution time and its top node's buffers."""
    lines = plan.splitlines()
    buffers = next((line.strip() for line in lines if "Buffers:" in line), "Buffers: n/a")
    timing = [
        line.strip() for line in lines if line.startswith(("Planning Time", "Execution Time"))
    ]
    return "; ".join([buffers, *timing])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="200000,1000000")
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--model", default="candle_features", help="comma-separated")
    parser.add_argument("--new-bars", type=int, default=1)
    parser.add_argument("--summary", action="store_true")
    args = parser.parse_args()
    models = [m.strip() for m in args.model.split(",") if m.strip()]

    import psycopg

    from bench.bench_scale import _chunks, _fresh_database
    from devstack.stack.private import private_stack
    from extract.load import load_frames
    from klinehouse.envvars import temporary_environ
    from klinehouse.settings import get_settings
    from transform.runner import run_dbt

    with private_stack("bench-explain-") as settings:
        admin = settings.require_database_url()
        for size in (int(s) for s in args.sizes.split(",")):
            bars = size // args.series
            url = _fresh_database(admin, f"bench_explain_{size}")
            with temporary_environ({"KLINEHOUSE_DATABASE_URL": url}):
                get_settings(fresh=True)
                load_frames(list(_chunks(args.series, bars)), url=url)
                run_dbt(["run", "--full-refresh"])
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("ANALYZE")
                load_frames(list(_chunks(args.series, args.new_bars, first=bars)), url=url)
                plans = {}
                if "candles" in models:
                    run_dbt(["compile", "-s", "candles"])
                    plans["candles"] = explain(url, "candles")
                others = [m for m in models if m != "candles"]
                if others:
                    run_dbt(["run", "-s", "candles"])
                    run_dbt(["compile", "-s", *others])
                    plans.update({m: explain(url, m) for m in others})
                for model, plan in plans.items():
                    print(f"\n== {size:,} rows ({args.series} x {bars:,} 1m bars): {model}")
                    print(summary(plan) if args.summary else plan, flush=True)
            get_settings(fresh=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
