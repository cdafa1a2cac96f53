"""The SQL the gate runs against the warehouse, as text one can EXPLAIN.

Each windowed asset's SELECT, and each of our SQL expectations with its `{batch}`
substituted as GX substitutes it (bench/explain_validate.py and the plan tests read
them; the gate itself runs them through GX).
"""

from __future__ import annotations

from dataclasses import dataclass

from great_expectations.expectations.metrics.query_metric_provider import (
    _query_has_join_clause,
)

from expectations import custom
from expectations.suites import SUITES


@dataclass(frozen=True)
class GateQuery:
    suite: str
    check: str  # "asset" or the expectation type
    datasource: str  # "raw" or "marts": the schema its bare table names resolve in
    sql: str
    windowed: bool  # False: reads whole tables by design (the streamed-series summaries)


def gate_queries() -> list[GateQuery]:
    """Every query of the gate over an asset with a SELECT (not the catalog-only raw_schema)."""
    found = []
    for spec in SUITES:
        if not spec.query:
            continue
        windowed = "klinehouse.since" in spec.query
        found.append(GateQuery(spec.name, "asset", spec.datasource, spec.query, windowed))
        for expectation in spec.expectations():
            if not isinstance(expectation, custom._KeyedUnexpectedRows):
                continue
            query = expectation.unexpected_rows_query
            assert isinstance(query, str)  # ours are fixed text (custom.py)
            # As GX substitutes it: a derived table aliased by GX unless the query joins.
            batch = f"({spec.query})"
            if not _query_has_join_clause(query):
                batch += " AS subselect"
            found.append(
                GateQuery(
                    spec.name, expectation.expectation_type, spec.datasource,
                    query.format(batch=batch), windowed,
                )
            )  # fmt: skip
    return found
