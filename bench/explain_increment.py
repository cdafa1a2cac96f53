"""EXPLAIN (ANALYZE, BUFFERS) of an incremental model's compiled SQL after +1 bar/series.

    .venv/bin/python bench/explain_increment.py [--sizes 200000,1000000] [--series 200]
        [--model candle_features]

Per size, in a private stack: synthetic 1m series (bench_scale's loader), `dbt run
--full-refresh`, ANALYZE, one new bar per series, `dbt run -s candles` (the upstream
watermark moves), then `dbt compile -s <model>` and the plan of its compiled SELECT
(the increment the next `dbt run` would read), printed in full with its timing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def explain(url: str, model: str) -> str:
    import psycopg

    from transform.runner import run_dbt, target_dir

    run_dbt(["compile", "-s", model])
    (compiled,) = target_dir().glob(f"compiled/*/models/marts/{model}.sql")
    query = compiled.read_text()
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query}").fetchall()  # type: ignore[call-overload]
    return "\n".join(str(r[0]) for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="200000,1000000")
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--model", default="candle_features")
    args = parser.parse_args()

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
                load_frames(list(_chunks(args.series, 1, first=bars)), url=url)
                if args.model != "candles":
                    run_dbt(["run", "-s", "candles"])
                print(f"\n== {size:,} rows ({args.series} x {bars:,} 1m bars): {args.model}")
                print(explain(url, args.model), flush=True)
            get_settings(fresh=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
