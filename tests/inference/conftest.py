"""Fixtures of the gRPC tests: a warehouse with candles and features, a server on a real
port reading it as klinehouse_reader, and channels to it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest
from psycopg import sql

from inference.server import ServerConfig, ServerThread
from klinehouse.features import NUMERIC_FEATURES
from klinehouse.settings import Settings

SYMBOLS = ("BTCUSDT", "ETHUSDT")
FIRST_OPEN = datetime(2024, 2, 28, tzinfo=UTC)
BARS = 5 * 24  # 2024-02-28 00:00 .. 2024-03-03 23:00, hourly
TOKEN = "test-token-" + uuid.uuid4().hex


def with_db(url: str, dbname: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + dbname


def create_marts(conn: psycopg.Connection) -> None:
    """marts.candles and marts.candle_features_latest as the dbt project (issue 5) names them,
    as plain tables that the tests fill (the service only reads them)."""
    features = ", ".join(f"{name} double precision" for name in NUMERIC_FEATURES)
    conn.execute(
        """
        CREATE TABLE marts.candles (
            market text NOT NULL, symbol text NOT NULL, interval text NOT NULL,
            open_time timestamptz NOT NULL, close_time timestamptz NOT NULL,
            open numeric NOT NULL, high numeric NOT NULL, low numeric NOT NULL,
            close numeric NOT NULL, volume numeric NOT NULL, quote_volume numeric,
            trade_count bigint, taker_buy_base_volume numeric, taker_buy_quote_volume numeric,
            PRIMARY KEY (market, symbol, interval, open_time))
        """
    )
    conn.execute(
        f"""CREATE TABLE marts.candle_features_latest (
            market text NOT NULL, symbol text NOT NULL, interval text NOT NULL,
            open_time timestamptz NOT NULL, {features},
            PRIMARY KEY (market, symbol, interval, open_time))"""
    )


def insert_candles(
    conn: psycopg.Connection, symbol: str, first: datetime, bars: int, *, base: str = "100.0"
) -> None:
    """`bars` hourly candles from `first`; prices exact to 8 decimals (base + bar index)."""
    conn.execute(
        """
        INSERT INTO marts.candles
        SELECT 'spot', %(symbol)s, '1h', t, t + interval '1 hour' - interval '1 millisecond',
               %(base)s::numeric + i, %(base)s::numeric + i + 0.5, %(base)s::numeric + i - 0.25,
               %(base)s::numeric + i + 0.12345678, 10 + i, NULL, 100 + i, 5.5, NULL
        FROM generate_series(0, %(bars)s - 1) AS i,
             LATERAL (SELECT %(first)s::timestamptz + i * interval '1 hour') AS g(t)
        """,
        {"symbol": symbol, "first": first, "bars": bars, "base": base},
    )


def insert_features(conn: psycopg.Connection, symbol: str, open_time: datetime, r1: float) -> None:
    values = [r1 * (k + 1) for k in range(len(NUMERIC_FEATURES))]
    conn.execute(
        sql.SQL(
            "INSERT INTO marts.candle_features_latest VALUES ('spot', %s, '1h', %s, {})"
        ).format(sql.SQL(", ").join(sql.Placeholder() * len(values))),
        [symbol, open_time, *values],
    )


@pytest.fixture(scope="session")
def warehouse(stack: Settings) -> Iterator[tuple[str, str]]:
    """One database for the read-mostly tests: (owner URL, reader URL)."""
    admin = with_db(stack.require_database_url(), "postgres")
    name = f"grpc_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE klinehouse_template").format(sql.Identifier(name))
        )
    owner = with_db(stack.require_database_url(), name)
    with psycopg.connect(owner, autocommit=True) as conn:
        create_marts(conn)
        for k, symbol in enumerate(SYMBOLS):
            insert_candles(conn, symbol, FIRST_OPEN, BARS, base=str(40000 if k == 0 else 3000))
            last_open = FIRST_OPEN + timedelta(hours=BARS - 1)
            insert_features(conn, symbol, last_open, 0.001 * (k + 1))
    yield owner, with_db(stack.reader_url(), name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def start_server(reader_url: str, **overrides: object) -> ServerThread:
    config = ServerConfig(
        address="127.0.0.1:0",
        database_url=reader_url,
        champion_poll_seconds=0.2,
        grace_seconds=1.0,
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return ServerThread(config)


@pytest.fixture(scope="session")
def server(warehouse: tuple[str, str]) -> Iterator[ServerThread]:
    with start_server(warehouse[1]) as thread:
        yield thread


@pytest.fixture
def channel(server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield ch


@pytest.fixture
def server_factory() -> Iterator[Callable[..., ServerThread]]:
    started: list[ServerThread] = []

    def make(reader_url: str, **overrides: object) -> ServerThread:
        thread = start_server(reader_url, **overrides).__enter__()
        started.append(thread)
        return thread

    yield make
    for thread in started:
        thread.__exit__(None, None, None)
