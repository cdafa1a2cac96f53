"""The revision guard: a reload may correct a few stored candles, not rewrite a series.

Before a frame is loaded, its rows are compared by key with what raw holds (the
same comparison the upsert makes: a NULL from a source lacking a column keeps the
stored value). The load is refused, unless the user accepts revisions, when

- more than `max(MAX_REVISED_ROWS, MAX_REVISED_SHARE * rows)` stored rows would
  change (5 rows, or 1 % of the frame when that is more), or
- any stored close would move by more than `MAX_CLOSE_CHANGE` (1 %),

which is what a file holding another symbol's rows, or a corrupted copy, looks
like. Every accepted revision is listed in the run's summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import polars as pl
import psycopg
from psycopg import sql

from extract.load import _ranges_empty
from klinehouse import klines
from klinehouse.errors import KlinehouseError

MAX_REVISED_ROWS = 5
MAX_REVISED_SHARE = Decimal("0.01")
MAX_CLOSE_CHANGE = Decimal("0.01")


class RevisionRefused(KlinehouseError):
    """A load would revise too much of the stored series: nothing of it was loaded."""


@dataclass(frozen=True)
class Revision:
    market: str
    symbol: str
    interval: str
    open_time: datetime
    old_close: Decimal
    new_close: Decimal

    @property
    def close_change(self) -> Decimal:
        if self.old_close == 0:
            return Decimal(0) if self.new_close == 0 else Decimal(1)
        return abs(self.new_close - self.old_close) / abs(self.old_close)

    def describe(self) -> str:
        return (
            f"{self.market} {self.symbol} {self.interval} {self.open_time.isoformat()}: "
            f"close {self.old_close.normalize()} -> {self.new_close.normalize()}"
        )


def _compare_sql() -> sql.Composed:
    compared = [c for c in klines.COLUMNS if c.name in klines.VALUE_COLUMNS and c.name != "source"]
    arrays = sql.SQL(", ").join(
        sql.SQL("%s::{}[]").format(sql.SQL(c.sql_type))
        for c in klines.COLUMNS
        if c.name in klines.KEY or c in compared
    )
    names = sql.SQL(", ").join(
        sql.Identifier(c.name) for c in klines.COLUMNS if c.name in klines.KEY or c in compared
    )

    def incoming(c: klines.Column) -> sql.Composable:
        if c.nullable:
            return sql.SQL("COALESCE(n.{0}, t.{0})").format(sql.Identifier(c.name))
        return sql.SQL("n.{}").format(sql.Identifier(c.name))

    old = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c.name)) for c in compared)
    new = sql.SQL(", ").join(incoming(c) for c in compared)
    on = sql.SQL(" AND ").join(
        sql.SQL("t.{0} = n.{0}").format(sql.Identifier(k)) for k in klines.KEY
    )
    return sql.SQL(
        "SELECT t.market, t.symbol, t.interval, t.open_time, t.close, n.close"
        " FROM unnest({arrays}) AS n({names})"
        " JOIN raw.binance_klines t ON {on}"
        " WHERE ({old}) IS DISTINCT FROM ({new})"
        " ORDER BY t.market, t.symbol, t.interval, t.open_time"
    ).format(arrays=arrays, names=names, on=on, old=old, new=new)


def find_revisions(conn: psycopg.Connection, df: pl.DataFrame) -> list[Revision]:
    """The stored rows that loading `df` (conformed to the kline schema) would change."""
    if df.is_empty() or _ranges_empty(conn, df):  # the loader's own fast-path test
        return []  # first loads and backfills: one cheap query, no comparison
    compared = [c for c in klines.COLUMNS if c.name in klines.VALUE_COLUMNS and c.name != "source"]
    columns = [c.name for c in klines.COLUMNS if c.name in klines.KEY or c in compared]
    rows = conn.execute(_compare_sql(), [df[c].to_list() for c in columns]).fetchall()
    return [Revision(*row) for row in rows]


def refusal(revisions: list[Revision], rows: int, *, what: str) -> str | None:
    """Why loading these revisions is refused, or None when they are within the limits."""
    limit = max(MAX_REVISED_ROWS, int(MAX_REVISED_SHARE * rows))
    moved = [r for r in revisions if r.close_change > MAX_CLOSE_CHANGE]
    if len(revisions) <= limit and not moved:
        return None
    reasons = []
    if len(revisions) > limit:
        reasons.append(f"it would revise {len(revisions)} stored rows (limit {limit})")
    if moved:
        worst = max(moved, key=lambda r: r.close_change)
        reasons.append(
            f"{len(moved)} stored close(s) would move by more than "
            f"{MAX_CLOSE_CHANGE:.0%}, e.g. {worst.describe()}"
        )
    return (
        f"{what}: refused, {' and '.join(reasons)}; nothing of it was loaded "
        "(another symbol's file? pass --accept-revisions if Binance really revised them)"
    )


def summary_lines(revisions: list[Revision], *, shown: int = 20) -> list[str]:
    """One line per revised row (the first `shown`), for the run's summary."""
    lines = [r.describe() for r in revisions[:shown]]
    if len(revisions) > shown:
        lines.append(f"... and {len(revisions) - shown} more")
    return lines
