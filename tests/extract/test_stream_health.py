"""Issue 15.10 and 15.11: the stream's commits are safe across threads, and /healthz
reflects the database, with `last_error` cleared once things work again."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import psycopg

from extract.stream import sink
from extract.stream.ingester import StreamIngester, StreamOptions
from klinehouse.settings import Settings

CLOSED = "postgresql://nobody:pw@127.0.0.1:9/nothing"  # nothing listens on port 9


def _bars(symbol: str, first: int, count: int) -> pl.DataFrame:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    times = [start + timedelta(minutes=i) for i in range(first, first + count)]
    price = [Decimal(100 + i % 7) for i in range(first, first + count)]
    return pl.DataFrame(
        {
            "market": "spot",
            "symbol": symbol,
            "interval": "1m",
            "open_time": times,
            "close_time": [t + timedelta(minutes=1, milliseconds=-1) for t in times],
            "open": price,
            "high": price,
            "low": price,
            "close": price,
            "volume": [Decimal(1)] * count,
            "quote_volume": price,
            "trades": [1] * count,
            "taker_buy_base_volume": [Decimal(0)] * count,
            "taker_buy_quote_volume": [Decimal(0)] * count,
            "source": "stream",
        }
    )


def test_flush_and_backfill_threads_can_share_one_committer(warehouse: Settings) -> None:
    committer = sink.Committer(warehouse.require_database_url())
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def commit_many(symbol: str) -> None:
        start.wait()
        try:
            for i in range(40):
                committer.commit(_bars(symbol, i * 5, 5))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=commit_many, args=(s,)) for s in ("AUSDT", "BUSDT")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    committer.close()
    assert not errors, errors  # "transaction commit at the wrong nesting level" before
    with psycopg.connect(warehouse.require_database_url()) as conn:
        counts = conn.execute(
            "SELECT symbol, count(*) FROM raw.binance_klines GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert counts == [("AUSDT", 200), ("BUSDT", 200)]


def test_healthz_reflects_the_database_and_last_error_clears(warehouse: Settings) -> None:
    options = StreamOptions("spot", ("BTCUSDT",), ("1m",), lake=False)
    ingester = StreamIngester(options, settings=warehouse)
    ingester._connected = {0: True}  # a live websocket with a fresh message
    ingester._last_message = time.monotonic()
    good = ingester._committer

    assert asyncio.run(ingester.probe_database())
    assert ingester.health()["healthy"] and ingester.health()["database"] is True

    ingester._committer = sink.Committer(CLOSED)  # the database goes away
    assert not asyncio.run(ingester.probe_database())
    body = ingester.health()
    assert body["healthy"] is False and body["database"] is False  # was 200 before
    assert body["last_error"] and "database" in body["last_error"]
    assert "pw@" not in body["last_error"]

    ingester._committer = good  # back: the next probe clears the error
    assert asyncio.run(ingester.probe_database())
    assert ingester.health()["healthy"] and ingester.health()["last_error"] is None

    # A flush error clears on the next successful commit (it never cleared before).
    ingester._set_error("database", "flush: OperationalError: the connection is closed")
    ingester._database_ok = False
    asyncio.run(ingester._commit_frame(_bars("BTCUSDT", 0, 3)))
    assert ingester.health()["last_error"] is None and ingester.health()["healthy"]
    good.close()
