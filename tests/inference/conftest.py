"""Fixtures of the gRPC tests: a warehouse whose marts dbt built from raw klines seeded
through the loader, a server on a real port reading it as klinehouse_reader, and
channels to it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import polars as pl
import pytest

from inference.server import ServerConfig, ServerThread
from klinehouse.settings import Settings

from ..marts import build_template, create_database, drop_database, klines, with_db

SYMBOLS = ("BTCUSDT", "ETHUSDT")
FIRST_OPEN = datetime(2024, 2, 28, tzinfo=UTC)
BARS = 5 * 24  # 2024-02-28 00:00 .. 2024-03-03 23:00, hourly
TOKEN = "test-token-" + uuid.uuid4().hex


MARTS = ("+candles", "+candle_features_latest")  # what the service reads, as dbt builds it
D = pl.Decimal(38, 8)


def hourly(first: datetime, bars: int) -> pl.Series:
    return pl.datetime_range(
        first, first + timedelta(hours=bars - 1), interval="1h", eager=True, time_zone="UTC"
    )


def candles(symbol: str, first: datetime, bars: int, *, base: str = "100.0") -> pl.DataFrame:
    """`bars` hourly raw klines from `first`; prices exact to 8 decimals (base + bar index)."""
    price = pl.lit(Decimal(base)).cast(D) + pl.col("i").cast(D)
    return klines(
        symbol,
        hourly(first, bars),
        open=price,
        high=price + pl.lit(Decimal("0.5")),
        low=price - pl.lit(Decimal("0.25")),
        close=price + pl.lit(Decimal("0.12345678")),
        volume=10 + pl.col("i"),
        trades=100 + pl.col("i"),
        taker_buy_base_volume=pl.lit(Decimal("5.5")),
    )


def land_candles(owner_url: str, frame: pl.DataFrame, *, transform: bool = True) -> None:
    """New klines as the ingester and the scheduler bring them: into raw through the
    loader, then (`transform`) the incremental `dbt run` of marts.candles. Features are
    a view over raw: they need no run."""
    from extract.load import load_frame
    from transform.runner import run_dbt

    load_frame(frame, url=owner_url)
    if transform:
        run_dbt(["run", "--select", "candles"], database_url=owner_url)


@pytest.fixture(scope="session")
def warehouse(stack: Settings) -> Iterator[tuple[str, str]]:
    """One database for the read-mostly tests, built by dbt: (owner URL, reader URL)."""
    frames = [
        candles(symbol, FIRST_OPEN, BARS, base=str(40000 if k == 0 else 3000))
        for k, symbol in enumerate(SYMBOLS)
    ]
    name = build_template(stack, frames, MARTS, prefix="grpc_")
    yield with_db(stack.require_database_url(), name), with_db(stack.reader_url(), name)
    drop_database(stack, name)


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


@contextmanager
def serve_clone(
    stack: Settings, template: str, prefix: str, server_factory: Callable[..., ServerThread]
) -> Iterator[tuple[str, ServerThread]]:
    """A clone of database `template`, served as klinehouse_reader: (owner URL, server);
    the clone is dropped afterwards."""
    name = create_database(stack, template, prefix=prefix)
    try:
        yield (
            with_db(stack.require_database_url(), name),
            server_factory(with_db(stack.reader_url(), name)),
        )
    finally:
        drop_database(stack, name)


@pytest.fixture(scope="session")
def predicting_template(stack: Settings) -> Iterator[str]:
    """Marts built by dbt once: candles and features of BTC, ETH (old) and SOL (fresh)."""
    now_bar = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    frames = [
        candles(symbol, FIRST_OPEN, 48, base=str(1000 * (k + 1)))
        for k, symbol in enumerate(("BTCUSDT", "ETHUSDT"))
    ]
    frames.append(candles("SOLUSDT", now_bar - timedelta(hours=29), 30))
    name = build_template(stack, frames, MARTS, prefix="predict_")
    yield name
    drop_database(stack, name)
