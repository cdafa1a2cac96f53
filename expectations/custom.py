"""SQL checks that no built-in expectation expresses, each a named expectation type.

Every class is an `UnexpectedRowsExpectation` whose query returns the offending
rows (keys first), so a failure names its own type (`expect_high_not_below_low`
…) and the report can show sample keys. `{batch}` is the batch's rows (the
time window, when one is set); other tables are referenced by their bare name and
found through the data source's `search_path`, so the same SQL serves the user's
schemas and a test's copies.
"""

from __future__ import annotations

from typing import Any, ClassVar

import great_expectations as gx

from klinehouse.klines import INTERVALS

SAMPLE_ROWS = 5  # offending rows kept in a result: enough to find them, small enough to read

# How many intervals a streamed series may lag behind now() before it counts as stale.
STALE_AFTER_INTERVALS = 3


def interval_sql(column: str) -> str:
    """SQL `interval` value of a Binance interval string (`1M` as a calendar month)."""
    branches = " ".join(
        f"WHEN '{name}' THEN interval '{int(length.total_seconds())} seconds'"
        for name, length in INTERVALS.items()
        if length is not None
    )
    return f"(CASE {column} {branches} WHEN '1M' THEN interval '1 month' END)"


class _KeyedUnexpectedRows(gx.expectations.UnexpectedRowsExpectation):
    """Keeps a few offending rows in every result format, not only COMPLETE."""

    # The query is the definition of the check: fixed per class, not configurable.
    sample_rows: ClassVar[int] = SAMPLE_ROWS

    def _validate(
        self,
        metrics: dict[str, Any],
        runtime_configuration: dict[str, Any] | None = None,
        execution_engine: Any = None,
    ) -> dict[str, Any]:
        rows = metrics["unexpected_rows_query.table"] or []
        count = metrics["unexpected_rows_query.row_count"]
        return {
            "success": count == 0,
            "result": {
                "observed_value": count,
                "details": {"unexpected_rows": list(rows)[: self.sample_rows]},
            },
        }


class ExpectOpenTimeNotInFuture(_KeyedUnexpectedRows):
    """No bar opens after the validation's own clock."""

    unexpected_rows_query: str = (
        "SELECT market, symbol, interval, open_time FROM {batch} WHERE open_time > now()"
    )
    description: str = "open_time is not in the future"


class ExpectStreamedSeriesFresh(_KeyedUnexpectedRows):
    """Each series fed by the websocket stream has a bar within the last few intervals."""

    # The batch is the per-series summary asset (never windowed: a dead stream has no
    # rows in a recent window, which is exactly when it must fail).
    unexpected_rows_query: str = (
        "SELECT market, symbol, interval, last_open_time FROM {batch} "
        f"WHERE last_open_time < now() - {STALE_AFTER_INTERVALS} * "
        f"{interval_sql('interval')}"
    )
    description: str = (
        f"streamed series have a bar within the last {STALE_AFTER_INTERVALS} intervals"
    )


class ExpectGapsListedInCandleGaps(_KeyedUnexpectedRows):
    """Every hole in a series' grid is a row of candle_gaps, and nothing else is missing."""

    unexpected_rows_query: str = (
        "SELECT b.market, b.symbol, b.interval, b.previous_open_time, b.open_time "
        "FROM (SELECT market, symbol, interval, open_time, lag(open_time) OVER "
        "(PARTITION BY market, symbol, interval ORDER BY open_time) AS previous_open_time "
        "FROM {batch}) AS b "
        f"WHERE b.interval <> '1M' AND b.open_time - b.previous_open_time > {interval_sql('b.interval')} "
        "AND NOT EXISTS (SELECT 1 FROM candle_gaps g WHERE g.market = b.market "
        "AND g.symbol = b.symbol AND g.interval = b.interval "
        f"AND g.gap_start = b.previous_open_time + {interval_sql('b.interval')})"
    )
    description: str = "gaps in candles only where candle_gaps lists them"


class ExpectNoLabelOnLastBar(_KeyedUnexpectedRows):
    """A series' last bar has no next bar: its label must be NULL, never a guess."""

    unexpected_rows_query: str = (
        "SELECT l.market, l.symbol, l.interval, l.open_time FROM {batch} AS l "
        "WHERE (l.target_up IS NOT NULL OR l.target_log_return_1 IS NOT NULL) "
        "AND NOT EXISTS (SELECT 1 FROM candle_labels n WHERE n.market = l.market "
        "AND n.symbol = l.symbol AND n.interval = l.interval AND n.open_time > l.open_time)"
    )
    description: str = "no label on a series' last bar"
