"""Reading EXPLAIN (ANALYZE, FORMAT JSON) plans: does a query reach raw and the marts by
key (index ranges) or by a scan, and how many of their rows did it visit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

WAREHOUSE_SCHEMAS = ("raw", "marts")


def seq_scans(plan: dict[str, Any]) -> list[str]:
    """The raw/marts relations a plan reads with a Seq Scan."""
    found = []
    if plan.get("Node Type") == "Seq Scan" and plan.get("Schema") in WAREHOUSE_SCHEMAS:
        found.append(f"{plan['Schema']}.{plan['Relation Name']}")
    for child in plan.get("Plans", ()):
        found += seq_scans(child)
    return found


def rows_read(plan: dict[str, Any]) -> int:
    """Rows the plan's nodes on raw/marts visited (returned or filtered out), all loops."""
    own = 0
    if plan.get("Schema") in WAREHOUSE_SCHEMAS:
        visited = plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)
        visited += plan.get("Rows Removed by Index Recheck", 0)
        own = int(visited * plan.get("Actual Loops", 1))
    return own + sum(rows_read(child) for child in plan.get("Plans", ()))


def explain(conn: psycopg.Connection, query: str, params: Sequence[Any] = ()) -> dict[str, Any]:
    """The executed plan of `query` (VERBOSE, so every node names its schema)."""
    cur = psycopg.ClientCursor(conn)
    cur.execute("EXPLAIN (ANALYZE, FORMAT JSON, VERBOSE) " + query, params)  # type: ignore[arg-type]
    row = cur.fetchone()
    assert row is not None
    return row[0][0]["Plan"]  # type: ignore[no-any-return]
