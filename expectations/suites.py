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
from klinehouse import klines

KEY: Final = list(klines.KEY)
PRICES: Final = ("open", "high", "low", "close")
VOLUMES: Final = ("volume", "quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume")

# Where a `since` window applies: the session setting the gate puts on each connection.
# An unset or empty setting means the whole table.
SINCE_SETTING: Final = "klinehouse.since"
_SINCE_SQL = (
    f"coalesce(nullif(current_setting('{SINCE_SETTING}', true), ''), '-infinity')::timestamptz"
)

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
    return f"SELECT * FROM {table} WHERE open_time >= {_SINCE_SQL}"


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


def _raw_streams() -> list[Expectation]:
    return [custom.ExpectStreamedSeriesFresh()]


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
        # One row per streamed series with its latest bar: never windowed (see custom).
        query=(
            "SELECT market, symbol, interval, max(open_time) AS last_open_time "
            "FROM binance_klines WHERE source = 'stream' GROUP BY market, symbol, interval"
        ),
        table="raw.binance_klines",
        expectations=_raw_streams,
    ),
)

SUITE_NAMES: Final = tuple(spec.name for spec in SUITES)
