"""The interval lengths in the GX checks' SQL are klinehouse.klines.INTERVALS, evaluated by
PostgreSQL itself (the dbt macro's copy is checked in tests/transform/test_project.py)."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from expectations.custom import interval_sql
from klinehouse.klines import INTERVALS


def test_interval_sql_is_each_klines_length(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for name, length in INTERVALS.items():
            row = conn.execute(
                f"SELECT {interval_sql('x.i')} = interval '1 month', "
                f"extract(epoch FROM {interval_sql('x.i')}) FROM (SELECT %s::text AS i) AS x",
                (name,),
            ).fetchone()
            assert row is not None
            is_month, seconds = row
            if length is None:
                assert is_month, name
            else:
                assert timedelta(seconds=float(seconds)) == length, name
        unknown = conn.execute("SELECT " + interval_sql("'7m'")).fetchone()
    assert unknown == (None,)
