"""Marts built by dbt from raw rows seeded through the project's loader.

dbt costs seconds per invocation, so a fixture builds its marts once per session
into a template database (`build_template`) and each test gets a clone of it
(`clone`): the tests read dbt's own output, never tables made by hand.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import polars as pl
import psycopg
from psycopg import sql

from klinehouse.settings import Settings

MIGRATED_TEMPLATE = "klinehouse_template"  # made by tests/conftest.py's session fixture


def with_db(url: str, dbname: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + dbname


def _admin(stack: Settings) -> str:
    return with_db(stack.require_database_url(), "postgres")


def create_database(stack: Settings, template: str = MIGRATED_TEMPLATE, prefix: str = "t_") -> str:
    """A new database cloned from `template`; returns its name."""
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin(stack), autocommit=True) as conn:
        # nobody may be connected to a template while it is copied (dbt's pool, a NOTIFY)
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            [template],
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return name


def drop_database(stack: Settings, name: str) -> None:
    with psycopg.connect(_admin(stack), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def seed_and_build(url: str, frames: Sequence[pl.DataFrame], select: Sequence[str]) -> None:
    """Load kline frames into raw through `extract.load.load_frame`, then `dbt run` them."""
    from extract.load import load_frame
    from transform.runner import run_dbt

    for frame in frames:
        load_frame(frame, url=url)
    run_dbt(["run", "--select", *select], database_url=url)


def build_template(
    stack: Settings, frames: Sequence[pl.DataFrame], select: Sequence[str], prefix: str
) -> str:
    """A migrated database with `frames` loaded and the `select`ed marts built by dbt;
    returns its name (clone it per test with `create_database(stack, name)`)."""
    name = create_database(stack, prefix=prefix)
    seed_and_build(with_db(stack.require_database_url(), name), frames, select)
    return name


def klines(
    symbol: str,
    times: pl.Series,
    *,
    open: pl.Expr,
    high: pl.Expr,
    low: pl.Expr,
    close: pl.Expr,
    volume: pl.Expr,
    trades: pl.Expr,
    taker_buy_base_volume: pl.Expr,
    quote_volume: pl.Expr | None = None,
    taker_buy_quote_volume: pl.Expr | None = None,
    interval: str = "1h",
    source: str = "rest",
) -> pl.DataFrame:
    """Raw klines of one series at `times`; the expressions may use `i`, the bar index."""
    hours = {"1h": 1, "4h": 4}.get(interval)
    assert hours is not None, "only 1h and 4h bars are built here"
    step = pl.duration(hours=hours)
    none = pl.lit(None, pl.Float64)
    return (
        pl.DataFrame({"open_time": times})
        .with_row_index("i")
        .with_columns(pl.col("i").cast(pl.Int64))
        .select(
            pl.lit("spot").alias("market"),
            pl.lit(symbol).alias("symbol"),
            pl.lit(interval).alias("interval"),
            pl.col("open_time"),
            (pl.col("open_time") + step - pl.duration(milliseconds=1)).alias("close_time"),
            open.alias("open"),
            high.alias("high"),
            low.alias("low"),
            close.alias("close"),
            volume.alias("volume"),
            (quote_volume if quote_volume is not None else none).alias("quote_volume"),
            trades.alias("trades"),
            taker_buy_base_volume.alias("taker_buy_base_volume"),
            (taker_buy_quote_volume if taker_buy_quote_volume is not None else none).alias(
                "taker_buy_quote_volume"
            ),
            pl.lit(source).alias("source"),
        )
    )
