"""Demo step: build and test the warehouse with dbt, then say what the marts hold."""

from __future__ import annotations

from klinehouse.settings import get_settings
from transform.runner import run_dbt


def step() -> None:
    """`make demo`: build and test the warehouse, then say what the marts hold."""
    import psycopg

    from app.demo.output import say

    run_dbt(["build", "--quiet"])
    with psycopg.connect(get_settings().require_database_url()) as conn:
        for mart in ("candles", "candle_gaps", "candle_features", "candle_labels"):
            (count,) = conn.execute(f"SELECT count(*) FROM marts.{mart}").fetchone() or (0,)
            say(f"  marts.{mart:<16} {count:>9,} rows")
        series = conn.execute("SELECT count(*) FROM marts.candle_features_latest").fetchone()
        say(
            f"  marts.candle_features_latest: newest features of {series[0] if series else 0} series"
        )
    say("  lineage and column docs: .venv/bin/klinehouse docs")
