"""The expectation suites, defined as code: what the warehouse promises about each table.

One `SuiteSpec` per checked table: the data source and asset it reads, and the
expectations. The GX project (`expectations/gx/`) stores what this module builds;
change the suites here, never in the JSON files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import great_expectations as gx
from great_expectations.expectations.expectation import Expectation

from expectations import custom
from expectations.window import SINCE_SQL
from klinehouse import klines

KEY: Final = list(klines.KEY)
PRICES: Final = ("open", "high", "low", "close")
VOLUMES: Final = ("volume", "quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume")

# Types as PostgreSQL reports them for raw.binance_klines (migration 0001, klines.COLUMNS).
_PG_TYPES: Final = {
    "text": "TEXT",
    "timestamptz": "TIMESTAMP WITH TIME ZONE",
    "numeric": "NUMERIC",
    "bigint": "BIGINT",
}


@dataclass(frozen=True)
class SuiteSpec:
    name: str  # suite, validation definition and report name
    datasource: str  # "raw" or "marts": which schema the asset's table lives in
    asset: str
    query: str  # the asset's SELECT (tables by bare name: search_path picks the schema); "" = table
    table: str  # the table the report names, e.g. "raw.binance_klines"
    expectations: Callable[[], list[Expectation]]


def windowed(table: str) -> str:
    """The rows of `table` at or after the gate's `since` (all rows when none is set)."""
    return f"SELECT * FROM {table} WHERE open_time >= {SINCE_SQL}"


def _keys_and_bars() -> list[Expectation]:
    """What raw klines and clean candles share: keys, positive prices, volumes, high >= low."""
    found: list[Expectation] = [
        gx.expectations.ExpectColumnValuesToNotBeNull(column=column) for column in KEY
    ]
    found += [
        gx.expectations.ExpectColumnValuesToBeInSet(
            column="market", value_set=list(klines.MARKETS)
        ),
        gx.expectations.ExpectColumnValuesToBeInSet(
            column="interval", value_set=list(klines.INTERVALS)
        ),
        gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=KEY),
        gx.expectations.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="high", column_B="low", or_equal=True
        ),
        custom.ExpectOpenTimeNotInFuture(),
    ]
    found += [
        gx.expectations.ExpectColumnValuesToBeBetween(column=price, min_value=0, strict_min=True)
        for price in PRICES
    ]
    found += [
        gx.expectations.ExpectColumnValuesToBeBetween(column=volume, min_value=0)
        for volume in VOLUMES
    ]
    return found


def _raw_schema() -> list[Expectation]:
    columns = [*klines.COLUMN_NAMES, "ingested_at"]
    found: list[Expectation] = [
        gx.expectations.ExpectTableColumnsToMatchSet(column_set=columns, exact_match=True)
    ]
    return found + [
        gx.expectations.ExpectColumnValuesToBeOfType(column=c.name, type_=_PG_TYPES[c.sql_type])
        for c in klines.COLUMNS
    ]


def _raw() -> list[Expectation]:
    found: list[Expectation] = [
        gx.expectations.ExpectColumnValuesToNotBeNull(column=c.name)
        for c in klines.COLUMNS
        if not c.nullable and c.name not in klines.KEY
    ]
    return found + _keys_and_bars()


def _streams() -> list[Expectation]:
    return [custom.ExpectStreamedSeriesFresh()]


def _candles() -> list[Expectation]:
    return [*_keys_and_bars(), custom.ExpectGapsListedInCandleGaps()]


def _features() -> list[Expectation]:
    between = gx.expectations.ExpectColumnValuesToBeBetween
    return [
        *(gx.expectations.ExpectColumnValuesToNotBeNull(column=column) for column in KEY),
        gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=KEY),
        between(column="rsi_14", min_value=0, max_value=100),
        between(column="volatility_24", min_value=0),
        between(column="taker_buy_ratio", min_value=0, max_value=1),
        between(column="range_pct", min_value=0),
        between(column="hour_of_day", min_value=0, max_value=23),
        between(column="day_of_week", min_value=1, max_value=7),
        custom.ExpectFeaturesWarmedUp(),
    ]


def _labels() -> list[Expectation]:
    return [
        *(gx.expectations.ExpectColumnValuesToNotBeNull(column=column) for column in KEY),
        gx.expectations.ExpectCompoundColumnsToBeUnique(column_list=KEY),
        # Boolean in the mart; an integer column fails here (no boolean = integer in SQL).
        gx.expectations.ExpectColumnValuesToBeInSet(column="target_up", value_set=[True, False]),
        custom.ExpectNoLabelOnLastBar(),
    ]


def _streamed_series(table: str) -> str:
    """One row per streamed series with its latest bar: never windowed (see custom)."""
    return (
        "SELECT market, symbol, interval, max(open_time) AS last_open_time "
        f"FROM {table} WHERE source = 'stream' GROUP BY market, symbol, interval"
    )


SUITES: Final[tuple[SuiteSpec, ...]] = (
    SuiteSpec(
        name="raw_schema",
        datasource="raw",
        asset="binance_klines_table",
        # Column types come from the catalog, which only a table asset reflects.
        query="",
        table="raw.binance_klines",
        expectations=_raw_schema,
    ),
    SuiteSpec(
        name="raw_klines",
        datasource="raw",
        asset="binance_klines",
        query=windowed("binance_klines"),
        table="raw.binance_klines",
        expectations=_raw,
    ),
    SuiteSpec(
        name="raw_streamed_series",
        datasource="raw",
        asset="streamed_series",
        query=_streamed_series("binance_klines"),
        table="raw.binance_klines",
        expectations=_streams,
    ),
    SuiteSpec(
        name="candles",
        datasource="marts",
        asset="candles",
        query=windowed("candles"),
        table="marts.candles",
        expectations=_candles,
    ),
    SuiteSpec(
        name="candles_streamed_series",
        datasource="marts",
        asset="streamed_candles",
        # Alive in raw but stale here means the transform is not keeping up.
        query=_streamed_series("candles"),
        table="marts.candles",
        expectations=_streams,
    ),
    SuiteSpec(
        name="candle_features",
        datasource="marts",
        asset="candle_features",
        query=windowed("candle_features"),
        table="marts.candle_features",
        expectations=_features,
    ),
    SuiteSpec(
        name="candle_labels",
        datasource="marts",
        asset="candle_labels",
        query=windowed("candle_labels"),
        table="marts.candle_labels",
        expectations=_labels,
    ),
)

SUITE_NAMES: Final = tuple(spec.name for spec in SUITES)
