"""The service's reads of the warehouse, as klinehouse_reader, through an async pool.

Every read goes by key: the series catalogue `serving.series` and per-series
`(market, symbol, interval, open_time)` ranges of `serving.klines` (raw with
marts.candles' cleaning rules) through raw's primary key, so a call costs the same
at 20M rows as at 20k, and no read depends on a relation dbt swaps or drops during
a run. The newest features are computed from each series' last bars
(`klinehouse.bar_features`): live as soon as the loader or the ingester commits.

Every read is one round trip on a pooled autocommit connection; a connection that
broke (the database restarted) is retried once on a fresh one. A busy pool is not
an unavailable database: unary reads wait for a connection up to their deadline
(then `PoolExhausted`), streams wait as long as it takes; with the database known
down (the LISTEN connection says so) reads fail at once (`DatabaseDown`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout, TooManyRequests

from inference.convert import CANDLE_SELECT
from inference.errors import invalid
from inference.requests import Series
from klinehouse import series as catalogue
from klinehouse.bar_features import BARS_NEEDED, BTC, Bar, add_bars, btc_return, newest_features
from klinehouse.feature_read import feature_columns, feature_schema
from training.registry import CHAMPION_VERSION_SQL

log = logging.getLogger(__name__)
MAX_SERIES = 2000  # series one features read may return (GetAdvice over a whole market)
WAIT_SLICE = 0.25  # seconds: how often a wait for a pooled connection looks at the database

CANDLES = catalogue.CLEAN_KLINES
SERIES = catalogue.TABLE


# a serving read is of one market and interval: the symbol is its only key column
FEATURE_KEYS = ("symbol",)
FEATURE_COLUMNS = feature_columns(FEATURE_KEYS)
_BAR_SELECT = (
    "(extract(epoch FROM k.open_time) * 1000000)::bigint, k.high::float8, k.low::float8, "
    "k.close::float8, k.volume::float8, k.taker_buy_base_volume::float8"
)


def features_frame(rows: Sequence[tuple[Any, ...]]) -> pl.DataFrame:
    """Rows of `latest_features` as the frame the champion's predict() takes."""
    return pl.DataFrame(rows, schema=feature_schema(FEATURE_KEYS), orient="row")


@functools.lru_cache(maxsize=1024)
def _features(
    bars: tuple[tuple[Any, ...], ...], interval: str, btc_log_return_1: float | None
) -> tuple[float | None, ...]:
    """`newest_features` of a series' last bars as read (a pure function of them: the
    calls that read the same bars until the next one closes compute them once)."""
    return newest_features([Bar(*b) for b in bars], interval, btc_log_return_1)


class PoolExhausted(TimeoutError):
    """Every pooled connection stayed busy until the call's deadline: RESOURCE_EXHAUSTED
    to clients (inference.status), a transient failure to the champion's reload loop."""


class DatabaseDown(ConnectionError):
    """The database is known unreachable: fail at once rather than at the deadline.
    An OSError, as a refused connection is: UNAVAILABLE to clients (inference.status),
    a transient failure to the champion's reload loop."""


@dataclass(frozen=True)
class SeriesCheck:
    symbol_known: bool
    intervals: tuple[str, ...]
    newest_us: tuple[tuple[str, int], ...] = ()  # (interval, newest open_time) per series

    def newest(self, interval: str) -> int | None:
        return dict(self.newest_us).get(interval)


class Store:
    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 8,
        connect_timeout: float = 5.0,
        statement_timeout_ms: int = 15000,
        max_waiting: int = 1024,
    ) -> None:
        self.available = True  # the LISTEN connection's view of the database (server.py)
        self.pool = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            timeout=connect_timeout,
            max_waiting=max_waiting,  # beyond this many queued calls: RESOURCE_EXHAUSTED
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

    @contextlib.asynccontextmanager
    async def _connection(
        self, timeout: float | None
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection, waited for in short slices: the wait ends with
        DatabaseDown as soon as the database is known down, with PoolExhausted when
        `timeout` (seconds; None: no limit, for streams) passed with every connection
        busy. TooManyRequests (more than `max_waiting` queued calls) is PoolExhausted."""
        ends = None if timeout is None else time.monotonic() + max(0.001, timeout * 0.9)
        while True:
            if not self.available:
                raise DatabaseDown("the database is unreachable")
            left = WAIT_SLICE if ends is None else min(WAIT_SLICE, ends - time.monotonic())
            try:
                async with self.pool.connection(timeout=max(0.001, left)) as conn:
                    yield conn
                    return
            except TooManyRequests as exc:
                raise PoolExhausted(str(exc)) from exc
            except PoolTimeout as exc:
                if ends is not None and time.monotonic() >= ends:
                    if self.pool.get_stats().get("pool_size", 0) == 0:
                        raise DatabaseDown("no connection to the database could be made") from exc
                    raise PoolExhausted(str(exc)) from exc

    async def fetch_all(
        self,
        queries: Sequence[tuple[str, Sequence[Any]]],
        *,
        timeout: float | None = None,
    ) -> list[list[tuple[Any, ...]]]:
        """Run `queries` on one pooled connection. `timeout`: seconds to wait for a
        connection (a unary call's deadline); None waits while the pool is busy and the
        database up (a stream must not end because other calls hold every connection)."""
        for attempt in (1, 2):
            try:
                async with self._connection(timeout) as conn:
                    results = []
                    for query, params in queries:
                        cur = await conn.execute(query, params)  # type: ignore[arg-type]
                        results.append(await cur.fetchall())
                    return results
            except pg_errors.QueryCanceled:
                raise
            except psycopg.OperationalError:
                # A pooled connection that died with the database: the pool drops it;
                # one retry on a fresh connection, then the caller sees UNAVAILABLE.
                if attempt == 2:
                    raise
                log.warning("database connection lost; retrying once on a fresh one")
        raise AssertionError("unreachable")

    async def fetch(
        self, query: str, params: Sequence[Any] = (), *, timeout: float | None = None
    ) -> list[tuple[Any, ...]]:
        return (await self.fetch_all([(query, params)], timeout=timeout))[0]

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
            self._connection(None) as conn,
            conn.transaction(),
            conn.cursor(name="candles") as cur,
        ):
            await cur.execute(query, params)  # type: ignore[arg-type]
            while rows := await cur.fetchmany(batch):
                yield rows

    async def candles_after(
        self, series: Series, last_sent: dict[str, int], *, limit: int
    ) -> list[tuple[Any, ...]]:
        """Candles newer than each symbol's last sent open_time (epoch µs), by key."""
        query = (
            f"SELECT {CANDLE_SELECT} "
            f"FROM unnest(%s::text[], %s::bigint[]) AS a(sym, after_us) CROSS JOIN LATERAL ("
            f" SELECT * FROM {CANDLES} c WHERE c.market = %s AND c.interval = %s"
            " AND c.symbol = a.sym"
            " AND c.open_time > 'epoch'::timestamptz + a.after_us * interval '1 microsecond'"
            " ORDER BY c.open_time LIMIT %s) c "
            "ORDER BY c.open_time, c.symbol LIMIT %s"
        )
        symbols = list(last_sent)
        return await self.fetch(
            query,
            [
                symbols,
                [last_sent[s] for s in symbols],
                series.market,
                series.interval,
                limit,
                limit,
            ],
        )

    async def last_open_times(self, series: Series, symbols: Sequence[str]) -> dict[str, int]:
        """The newest served open_time (epoch µs) of each symbol that has one, by key."""
        rows = await self.fetch(
            "SELECT a.sym, (extract(epoch FROM c.open_time) * 1000000)::bigint "
            "FROM unnest(%s::text[]) AS a(sym) CROSS JOIN LATERAL ("
            f" SELECT open_time FROM {CANDLES} c WHERE c.market = %s AND c.interval = %s"
            " AND c.symbol = a.sym ORDER BY c.open_time DESC LIMIT 1) c",
            [list(symbols), series.market, series.interval],
        )
        return {symbol: us for symbol, us in rows}

    async def check_series(self, market: str, symbol: str) -> SeriesCheck:
        rows = await self.fetch(
            "SELECT interval, (extract(epoch FROM last_open_time) * 1000000)::bigint "
            f"FROM {SERIES} WHERE market = %s AND symbol = %s ORDER BY interval",
            [market, symbol],
        )
        return SeriesCheck(bool(rows), tuple(r[0] for r in rows), tuple((r[0], r[1]) for r in rows))

    # --- features and the registry ---------------------------------------------------

    @staticmethod
    def _bars_query(series: Series, symbols: Sequence[str] | None) -> tuple[str, list[Any]]:
        # The catalogue's rows first, at most MAX_SERIES + 1 (memory stays bounded
        # whatever the warehouse holds), then each one's last bars by key.
        wanted = "" if symbols is None else " AND symbol = ANY(%s)"
        query = (
            f"SELECT s.symbol, {_BAR_SELECT} FROM ("
            f" SELECT * FROM {SERIES} WHERE market = %s AND interval = %s{wanted}"
            f" ORDER BY symbol LIMIT {MAX_SERIES + 1}) s CROSS JOIN LATERAL ("
            f" SELECT * FROM {CANDLES} k WHERE k.market = s.market AND k.symbol = s.symbol"
            f" AND k.interval = s.interval ORDER BY k.open_time DESC LIMIT {BARS_NEEDED}) k"
        )
        params: list[Any] = [series.market, series.interval]
        if symbols is not None:
            params.append(list(symbols))
        return query + " ORDER BY s.symbol, k.open_time DESC", params

    @staticmethod
    def _btc_query(series: Series, times_us: Sequence[int]) -> tuple[str, list[Any]]:
        return (
            f"SELECT {_BAR_SELECT} FROM {CANDLES} k WHERE k.market = %s AND k.interval = %s"
            " AND k.symbol = %s AND k.open_time = ANY("
            "SELECT 'epoch'::timestamptz + us * interval '1 microsecond'"
            " FROM unnest(%s::bigint[]) AS t(us))",
            [series.market, series.interval, BTC, list(times_us)],
        )

    async def latest_features(
        self, series: Series, symbols: Sequence[str] | None, *, timeout: float | None = None
    ) -> list[tuple[Any, ...]]:
        """The newest feature row of each symbol (all symbols of the catalogue when
        `symbols` is None), as tuples in the order of `FEATURE_COLUMNS`: each series'
        last bars by key, BTCUSDT's among them (btc_log_return_1: one round trip unless
        a series lags BTCUSDT by more than the lookback, or BTCUSDT has a gap there)."""
        asked = None if symbols is None else [*symbols, *([] if BTC in symbols else [BTC])]
        (rows,) = await self.fetch_all([self._bars_query(series, asked)], timeout=timeout)
        bars: dict[str, list[tuple[Any, ...]]] = {}  # (open_us, high, low, close, ...) newest first
        for row in rows:
            bars.setdefault(row[0], []).append(row[1:])
        if len(bars) > MAX_SERIES:
            raise invalid(
                "symbols",
                f"{series.market} {series.interval} has more than {MAX_SERIES} series: "
                "name the symbols to rank",
            )
        newest = {b[0][0] for sym, b in bars.items() if symbols is None or sym in symbols}
        wanted = sorted(newest | {add_bars(t, -1, series.interval) for t in newest})
        btc_bars = [Bar(*b) for b in bars.get(BTC, []) if b[0] in wanted]
        if symbols is not None and BTC not in symbols:
            bars.pop(BTC, None)
        if wanted and len(btc_bars) < len(wanted):
            (btc_rows,) = await self.fetch_all([self._btc_query(series, wanted)], timeout=timeout)
            btc_bars = [Bar(*r) for r in btc_rows]
        return [
            (
                symbol,
                own[0][0],
                *_features(
                    tuple(own), series.interval, btc_return(btc_bars, own[0][0], series.interval)
                ),
            )
            for symbol, own in bars.items()
        ]

    async def champion_version(self) -> str | None:
        rows = await self.fetch(CHAMPION_VERSION_SQL, [])
        return str(rows[0][0]) if rows else None
