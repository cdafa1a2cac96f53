"""The service's reads of the warehouse, as klinehouse_reader, through an async pool.

Every read is one query on a pooled autocommit connection; a connection that
broke (the database restarted) is retried once on a fresh one, so the service
recovers by itself when the database is back.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool

from inference.convert import CANDLE_SELECT
from inference.requests import Series
from klinehouse.feature_read import feature_columns, feature_schema, feature_select
from training.registry import CHAMPION_VERSION_SQL

log = logging.getLogger(__name__)

CANDLES = "marts.candles"
FEATURES_LATEST = "marts.candle_features_latest"


# a serving read is of one market and interval: the symbol is its only key column
FEATURE_KEYS = ("symbol",)
FEATURE_COLUMNS = feature_columns(FEATURE_KEYS)
_FEATURE_SELECT = feature_select(FEATURE_KEYS).as_string(None)


def features_frame(rows: Sequence[tuple[Any, ...]]) -> pl.DataFrame:
    """Rows of `latest_features` as the frame the champion's predict() takes."""
    return pl.DataFrame(rows, schema=feature_schema(FEATURE_KEYS), orient="row")


@dataclass(frozen=True)
class SeriesCheck:
    symbol_known: bool
    intervals: tuple[str, ...]


class Store:
    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 8,
        connect_timeout: float = 5.0,
        statement_timeout_ms: int = 15000,
    ) -> None:
        self.pool = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            timeout=connect_timeout,
            reconnect_timeout=0,  # keep trying while the database is away
            name="klinehouse-grpc",
            kwargs={
                "autocommit": True,
                "connect_timeout": max(1, int(connect_timeout)),
                "options": f"-c statement_timeout={statement_timeout_ms}",
                "application_name": "klinehouse-grpc",
            },
        )

    async def open(self) -> None:
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    async def fetch(
        self, query: str, params: Sequence[Any] = (), *, timeout: float | None = None
    ) -> list[tuple[Any, ...]]:
        for attempt in (1, 2):
            try:
                async with self.pool.connection(timeout=timeout) as conn:
                    cur = await conn.execute(query, params)  # type: ignore[arg-type]
                    return await cur.fetchall()
            except pg_errors.QueryCanceled:
                raise
            except psycopg.OperationalError:
                # A pooled connection that died with the database: the pool drops it;
                # one retry on a fresh connection, then the caller sees UNAVAILABLE.
                if attempt == 2:
                    raise
                log.warning("database connection lost; retrying once on a fresh one")
        raise AssertionError("unreachable")

    # --- candles ---------------------------------------------------------------------

    @staticmethod
    def _range_query(
        series: Series, symbols: Sequence[str], start: datetime, end: datetime | None
    ) -> tuple[str, list[Any]]:
        one = len(symbols) == 1  # `symbol = %s` keeps the key index's order: no sort
        query = (
            f"SELECT {CANDLE_SELECT} FROM {CANDLES} WHERE market = %s AND interval = %s "
            f"AND symbol {'= %s' if one else '= ANY(%s)'} AND open_time >= %s"
        )
        params: list[Any] = [series.market, series.interval, symbols[0] if one else list(symbols)]
        params.append(start)
        if end is not None:
            query += " AND open_time < %s"
            params.append(end)
        query += " ORDER BY open_time" if one else " ORDER BY open_time, symbol"
        return query, params

    async def candles(
        self,
        series: Series,
        symbols: Sequence[str],
        start: datetime,
        end: datetime | None,
        *,
        limit: int,
        timeout: float | None = None,
    ) -> list[tuple[Any, ...]]:
        """Candles in [start, end) by (open_time, symbol), at most `limit`."""
        query, params = self._range_query(series, symbols, start, end)
        return await self.fetch(query + " LIMIT %s", [*params, limit], timeout=timeout)

    async def candle_batches(
        self,
        series: Series,
        symbols: Sequence[str],
        start: datetime,
        end: datetime | None,
        *,
        batch: int,
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        """The same range, any size, through one server-side cursor, `batch` rows at a time."""
        query, params = self._range_query(series, symbols, start, end)
        async with (
            self.pool.connection() as conn,
            conn.transaction(),
            conn.cursor(name="candles") as cur,
        ):
            await cur.execute(query, params)  # type: ignore[arg-type]
            while rows := await cur.fetchmany(batch):
                yield rows

    async def candles_after(
        self, series: Series, last_sent: dict[str, int], *, limit: int
    ) -> list[tuple[Any, ...]]:
        """Candles newer than each symbol's last sent open_time (epoch µs)."""
        query = (
            f"SELECT {CANDLE_SELECT} "
            f"FROM {CANDLES} c JOIN unnest(%s::text[], %s::bigint[]) AS a(sym, after_us) "
            "ON c.symbol = a.sym "
            "WHERE c.market = %s AND c.interval = %s "
            "AND c.open_time > 'epoch'::timestamptz + a.after_us * interval '1 microsecond' "
            "ORDER BY c.open_time, c.symbol LIMIT %s"
        )
        symbols = list(last_sent)
        return await self.fetch(
            query,
            [symbols, [last_sent[s] for s in symbols], series.market, series.interval, limit],
        )

    async def last_open_times(self, series: Series, symbols: Sequence[str]) -> dict[str, int]:
        rows = await self.fetch(
            "SELECT symbol, (extract(epoch FROM max(open_time)) * 1000000)::bigint "
            f"FROM {CANDLES} WHERE market = %s AND interval = %s AND symbol = ANY(%s) "
            "GROUP BY symbol",
            [series.market, series.interval, list(symbols)],
        )
        return {symbol: us for symbol, us in rows}

    async def check_series(self, market: str, symbol: str) -> SeriesCheck:
        rows = await self.fetch(
            f"SELECT DISTINCT interval FROM {CANDLES} WHERE market = %s AND symbol = %s",
            [market, symbol],
        )
        return SeriesCheck(bool(rows), tuple(sorted(r[0] for r in rows)))

    # --- features and the registry ---------------------------------------------------

    async def latest_features(
        self, series: Series, symbols: Sequence[str] | None, *, timeout: float | None = None
    ) -> list[tuple[Any, ...]]:
        """The newest feature row of each symbol (all symbols when `symbols` is None),
        as tuples in the order of `FEATURE_COLUMNS`."""
        query = (
            f"SELECT DISTINCT ON (symbol) {_FEATURE_SELECT} "
            f"FROM {FEATURES_LATEST} WHERE market = %s AND interval = %s"
        )
        params: list[Any] = [series.market, series.interval]
        if symbols is not None:
            query += " AND symbol = ANY(%s)"
            params.append(list(symbols))
        query += " ORDER BY symbol, open_time DESC"
        return await self.fetch(query, params, timeout=timeout)

    async def champion_version(self) -> str | None:
        rows = await self.fetch(CHAMPION_VERSION_SQL, [])
        return str(rows[0][0]) if rows else None
