"""Committing closed candles: the loader's upsert, then NOTIFY klinehouse_candles.

The upsert is `extract.load.load_frame` (the same idempotent COPY + ON CONFLICT
as every other source): a candle that arrives twice, or over REST and the
stream both, is stored once. After the commit, one notification per candle on
channel `klinehouse_candles` with the JSON payload
`{"market", "symbol", "interval", "open_time"}` (open_time in ISO-8601 UTC),
so listeners (the gRPC service) push new candles without polling.
"""

from __future__ import annotations

import threading
from datetime import datetime

import polars as pl
import psycopg

from extract.load import LoadStats, load_frame
from klinehouse import channels, db

CHANNEL = channels.CANDLES


def notification_payloads(df: pl.DataFrame) -> list[str]:
    """One compact JSON object per candle (built by polars: thousands per flush)."""
    return (
        df.select(
            pl.struct(
                "market",
                "symbol",
                "interval",
                pl.col("open_time").dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            ).struct.json_encode()
        )
        .to_series()
        .to_list()
    )


class Committer:
    """Commits kline frames and their notifications in one transaction on one kept
    connection (a connect per flush cost tens of milliseconds); a candle is announced
    only once it is committed. The connection is opened again after a failure.

    Thread-safe: the flusher and the REST backfill commit from different worker
    threads, and one connection's transactions must not interleave (seen: "transaction
    commit at the wrong nesting level"), so each commit holds a lock."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = db.connect(self.url, autocommit=True)
        return self._conn

    def commit(self, df: pl.DataFrame) -> LoadStats:
        """Upsert a kline frame, then announce each of its candles; returns the load stats."""
        if df.is_empty():
            return LoadStats()
        payloads = notification_payloads(df)
        with self._lock:
            return self._commit(df, payloads)

    def ping(self) -> None:
        """Raise unless the database answers on the kept connection (for /healthz)."""
        with self._lock:
            try:
                self._connection().execute("SELECT 1")
            except Exception:
                self._close()
                raise

    def _commit(self, df: pl.DataFrame, payloads: list[str]) -> LoadStats:
        try:
            conn = self._connection()
            with conn.transaction():
                stats = load_frame(df, conn=conn)
                # One JSON document rather than a text[]: psycopg's array escaping costs
                # more than the whole notify at a few hundred candles.
                conn.execute(
                    "SELECT pg_notify(%s, payload::text)"
                    " FROM json_array_elements(%s::json) AS payload",
                    (CHANNEL, "[" + ",".join(payloads) + "]"),
                )
        except Exception:
            self._close()
            raise
        return stats

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def newest_open_times(
    url: str, *, market: str, series: list[tuple[str, str]]
) -> dict[tuple[str, str], datetime]:
    """The newest stored open_time of each (symbol, interval) that has any."""
    if not series:
        return {}
    symbols = [s for s, _ in series]
    intervals = [i for _, i in series]
    with db.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT w.symbol, w.interval,"
            " (SELECT max(k.open_time) FROM raw.binance_klines k"
            "   WHERE k.market = %s AND k.symbol = w.symbol AND k.interval = w.interval)"
            " FROM unnest(%s::text[], %s::text[]) AS w(symbol, interval)",
            (market, symbols, intervals),
        ).fetchall()
    return {(s, i): t for s, i, t in rows if t is not None}
