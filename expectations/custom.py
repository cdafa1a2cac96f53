"""SQL checks that no built-in expectation expresses, each a named expectation type.

Every class is an `UnexpectedRowsExpectation` whose query returns the offending
rows (keys first), so a failure names its own type (`expect_high_not_below_low`
…) and the report can show sample keys. `{batch}` is the batch's rows (the
time window, when one is set); other tables are referenced by their bare name and
found through the data source's `search_path`, so the same SQL serves the user's
schemas and a test's copies.

GX aliases `{batch}` itself unless the query contains a JOIN (then the query must):
queries without a JOIN read `(SELECT * FROM {batch}) AS x` to get an alias of their own.
"""

from __future__ import annotations

from typing import Any, ClassVar

import great_expectations as gx

from expectations.window import AS_OF_SQL
from klinehouse.features import FEATURE_LOOKBACK_BARS
from klinehouse.klines import INTERVALS

SAMPLE_ROWS = 5  # offending rows kept in a result: enough to find them, small enough to read

# Price features every warmed-up on-grid bar should have, and the share that may be NULL
# (windows spanning real outage gaps).
WARMED_FEATURES = ("log_return_1", "log_return_24", "volatility_24", "rsi_14", "range_pct")
MAX_NULL_FRACTION = 0.05

# How many intervals a streamed series may lag behind the run's clock before it is stale.
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
    """No bar opens after the run's clock (now(), or the `as_of` of a replay)."""

    unexpected_rows_query: str = (
        f"SELECT market, symbol, interval, open_time FROM {{batch}} WHERE open_time > {AS_OF_SQL}"
    )
    description: str = "open_time is not in the future"


class ExpectStreamedSeriesFresh(_KeyedUnexpectedRows):
    """Each series fed by the websocket stream has a bar within the last few intervals of the run's clock."""

    # The batch is the per-series summary asset (never windowed: a dead stream has no
    # rows in a recent window, which is exactly when it must fail).
    unexpected_rows_query: str = (
        "SELECT market, symbol, interval, last_open_time FROM {batch} "
        f"WHERE last_open_time < {AS_OF_SQL} - {STALE_AFTER_INTERVALS} * "
        f"{interval_sql('interval')}"
    )
    description: str = (
        f"streamed series have a bar within the last {STALE_AFTER_INTERVALS} intervals"
    )


class ExpectGapsListedInCandleGaps(_KeyedUnexpectedRows):
    """Every hole in a native series' grid is a row of candle_gaps."""

    # Native on-grid bars only: candle_gaps is defined on them (a resampled bar may fill
    # part of a native gap, an off-grid bar is no step of the grid).
    # candle_gaps is a view computing lead() over each series' whole history: it is
    # probed once per hole of the window (a subquery that OFFSET 0 keeps from becoming
    # an anti-join over the whole view), with the series' key, which the view pushes
    # through its window function to the key's index. A window without holes never
    # reads it.
    unexpected_rows_query: str = (
        "SELECT b.market, b.symbol, b.interval, b.previous_open_time, b.open_time "
        "FROM (SELECT market, symbol, interval, open_time, lag(open_time) OVER "
        "(PARTITION BY market, symbol, interval ORDER BY open_time) AS previous_open_time "
        "FROM (SELECT * FROM {batch}) AS c WHERE c.resampled_from IS NULL AND c.is_on_grid) AS b "
        "WHERE b.open_time > b.previous_open_time + "
        f"{interval_sql('b.interval')} "
        "AND NOT EXISTS (SELECT 1 FROM candle_gaps g WHERE g.market = b.market "
        "AND g.symbol = b.symbol AND g.interval = b.interval "
        f"AND g.gap_start = b.previous_open_time + {interval_sql('b.interval')} OFFSET 0)"
    )
    description: str = "gaps in candles only where candle_gaps lists them"


class ExpectFeaturesWarmedUp(_KeyedUnexpectedRows):
    """Once a series has its longest window of history (FEATURE_LOOKBACK_BARS bars before
    a bar), its price features are mostly set."""

    # Each series' first bar: one probe of the key per series of the batch (a GROUP BY
    # over candle_features would read its whole history).
    # A window spanning a gap is NULL by definition, so some NULLs stay legitimate; a
    # series above the bound has a broken feature, not bad luck. Volume z-score, taker
    # ratio and btc_log_return_1 are left out: NULL is their honest value for flat
    # volume, sources without taker volume and markets without BTCUSDT.
    unexpected_rows_query: str = (
        "SELECT f.market, f.symbol, f.interval, count(*) AS warmed_rows, "
        f"count(*) FILTER (WHERE {' OR '.join(f'f.{c} IS NULL' for c in WARMED_FEATURES)}) "
        "AS null_rows FROM {batch} AS f JOIN (SELECT k.market, k.symbol, k.interval, "
        "(SELECT min(c.open_time) FROM candle_features AS c WHERE c.market = k.market "
        "AND c.symbol = k.symbol AND c.interval = k.interval) AS first_open_time "
        "FROM (SELECT DISTINCT market, symbol, interval FROM {batch} AS b) AS k) AS s "
        "ON s.market = f.market AND s.symbol = f.symbol AND s.interval = f.interval "
        f"WHERE f.interval <> '1M' AND f.open_time >= s.first_open_time + "
        f"{FEATURE_LOOKBACK_BARS} * {interval_sql('f.interval')} "
        "GROUP BY f.market, f.symbol, f.interval "
        f"HAVING count(*) FILTER (WHERE {' OR '.join(f'f.{c} IS NULL' for c in WARMED_FEATURES)}) "
        f"> {MAX_NULL_FRACTION} * count(*)"
    )
    description: str = (
        f"at most {MAX_NULL_FRACTION:.0%} NULL price features once a series has warmed up"
    )


class ExpectNoLabelOnLastBar(_KeyedUnexpectedRows):
    """A series' last bar has no next bar: its label must be NULL, never a guess."""

    # Each series of the batch's last bar: one probe of the key per series (a GROUP BY
    # over candle_labels would read its whole history), then a hash join.
    unexpected_rows_query: str = (
        "SELECT l.market, l.symbol, l.interval, l.open_time FROM {batch} AS l "
        "JOIN (SELECT k.market, k.symbol, k.interval, (SELECT max(c.open_time) "
        "FROM candle_labels AS c WHERE c.market = k.market AND c.symbol = k.symbol "
        "AND c.interval = k.interval) AS last_open_time "
        "FROM (SELECT DISTINCT market, symbol, interval FROM {batch} AS b) AS k) AS s "
        "ON s.market = l.market AND s.symbol = l.symbol AND s.interval = l.interval "
        "AND l.open_time = s.last_open_time "
        "WHERE l.target_up IS NOT NULL OR l.target_log_return_1 IS NOT NULL"
    )
    description: str = "no label on a series' last bar"
