"""The training set: `marts.candle_features` joined with `marts.candle_labels`, read
columnar into polars through one `COPY … TO STDOUT` (never row by row).

Times travel as epoch microseconds so that the session time zone cannot change them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
import psycopg
from psycopg import sql

from klinehouse.db import connect
from klinehouse.errors import KlinehouseError
from klinehouse.feature_read import (
    KEY_COLUMNS,
    feature_schema,
    feature_select,
    is_class_label,
    label_schema,
    label_select,
)
from klinehouse.features import LABEL_CLASS, LABEL_RETURN, LABELS, NUMERIC_FEATURES
from klinehouse.klines import INTERVALS, MARKETS

KEYS = ("market", "symbol", "interval", "open_time")
NEXT_BAR_LABELS = (LABEL_RETURN, LABEL_CLASS)


@dataclass(frozen=True)
class DatasetSpec:
    """Which slice of the marts to train on; `None` means all of it."""

    market: str = "spot"
    interval: str = "1h"
    symbols: tuple[str, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None

    def validate(self) -> None:
        if self.market not in MARKETS:
            raise KlinehouseError(f"unknown market {self.market!r}: expected one of {MARKETS}")
        if self.interval not in INTERVALS:
            raise KlinehouseError(f"unknown interval {self.interval!r}")
        if self.start and self.end and self.start >= self.end:
            raise KlinehouseError(f"start {self.start} is not before end {self.end}")


def _schema() -> dict[str, pl.DataType]:
    schema = feature_schema(KEY_COLUMNS)
    schema.update(label_schema())
    return schema


def _query(spec: DatasetSpec, part: int = 0, parts: int = 1) -> sql.Composed:
    conditions = [
        sql.SQL("f.market = {}").format(sql.Literal(spec.market)),
        sql.SQL("f.interval = {}").format(sql.Literal(spec.interval)),
    ]
    if spec.symbols:
        conditions.append(sql.SQL("f.symbol = ANY({})").format(sql.Literal(list(spec.symbols))))
    if spec.start:
        conditions.append(sql.SQL("f.open_time >= {}").format(sql.Literal(spec.start)))
    if spec.end:
        conditions.append(sql.SQL("f.open_time < {}").format(sql.Literal(spec.end)))
    if parts > 1:
        # interleaved bars (bar index mod parts): balanced whatever the symbols
        length = INTERVALS[spec.interval]
        step = int(length.total_seconds()) if length else 86400
        conditions.append(
            sql.SQL("mod((extract(epoch FROM f.open_time))::bigint / {}, {}) = {}").format(
                sql.Literal(step), sql.Literal(parts), sql.Literal(part)
            )
        )
    return sql.SQL(
        "SELECT {features}, {labels}"
        " FROM marts.candle_features f"
        " JOIN marts.candle_labels l USING (market, symbol, interval, open_time)"
        " WHERE {where}"
    ).format(
        features=feature_select(KEY_COLUMNS, table="f"),
        labels=label_select(table="l"),
        where=sql.SQL(" AND ").join(conditions),
    )


_CHUNK_BYTES = 32 << 20


def _parse(chunk: bytes) -> pl.DataFrame:
    return pl.read_csv(io.BytesIO(chunk), has_header=False, schema=_schema())


def _copy_part(spec: DatasetSpec, url: str | None, part: int, parts: int) -> list[pl.DataFrame]:
    chunks: list[pl.DataFrame] = []
    with connect(url) as conn:
        # Freshly built marts often have no statistics yet; the planner then guesses one
        # row and picks a nested loop (3 s per 100k rows instead of 0.2 s). A training
        # read always joins large slices: a hash or merge join is right.
        conn.execute("SET LOCAL enable_nestloop = off")
        copy_sql = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(_query(spec, part, parts))
        chunks.extend(_parse(text) for text in copy_csv_chunks(conn, copy_sql))
    return chunks


def copy_csv_chunks(conn: psycopg.Connection[Any], copy_sql: sql.Composed) -> Iterator[bytes]:
    """The CSV of `COPY ... TO STDOUT` in pieces of about `_CHUNK_BYTES`, each ending on a
    whole line: the caller parses as they arrive, so the CSV text never exists in full."""
    pending = bytearray()
    with conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for block in copy:
            pending += block
            if len(pending) >= _CHUNK_BYTES:
                cut = pending.rfind(b"\n") + 1
                if cut:
                    yield bytes(pending[:cut])
                    del pending[:cut]
    if pending:
        yield bytes(pending)


def require_marts(url: str | None) -> None:
    """The training marts exist, or a KlinehouseError saying how to build them."""
    with connect(url) as conn:
        missing = conn.execute(
            "SELECT t FROM unnest(ARRAY['marts.candle_features', 'marts.candle_labels']) t"
            " WHERE to_regclass(t) IS NULL"
        ).fetchall()
    if missing:
        names = ", ".join(r[0] for r in missing)
        raise KlinehouseError(f"{names} not found: run `klinehouse transform` first")


def load_dataset(spec: DatasetSpec, *, url: str | None = None, workers: int = 2) -> pl.DataFrame:
    """Features and labels of `spec`, ordered by (open_time, symbol).

    Rows whose label is NULL (last bar of a series, next bar missing) are kept:
    the caller decides (training drops them, the fingerprint counts them).
    `workers` COPY streams read interleaved bars in parallel.
    """
    spec.validate()
    if workers < 1:
        raise KlinehouseError(f"workers must be at least 1, got {workers}")
    require_marts(url)
    if workers == 1:
        chunks = _copy_part(spec, url, 0, 1)
    else:
        # PostgreSQL renders one COPY on one core: two connections render in parallel,
        # while polars parses (GIL released) the chunks that already arrived
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda k: _copy_part(spec, url, k, workers), range(workers)))
        chunks = [c for part in results for c in part]
    frame = pl.concat(chunks) if chunks else pl.DataFrame(schema=_schema())
    # sorted here, not in SQL: polars sorts in parallel, PostgreSQL's sort is one more pass
    return (
        frame.with_columns(
            pl.from_epoch("open_time_us", time_unit="us")
            .dt.replace_time_zone("UTC")
            .alias("open_time"),
            *(pl.col(c).cast(pl.Boolean) for c in LABELS if is_class_label(c)),
        )
        .select(*KEYS, *NUMERIC_FEATURES, *LABELS)
        .sort("open_time", "symbol")
    )


def labelled(frame: pl.DataFrame, labels: tuple[str, ...] = NEXT_BAR_LABELS) -> pl.DataFrame:
    """The rows a model may learn from: `labels` present (the evaluation narrows them
    further to the rows where every candidate's label is known)."""
    return frame.filter(pl.all_horizontal(pl.col(c).is_not_null() for c in labels))


def fingerprint(frame: pl.DataFrame) -> dict[str, dict[str, object]]:
    """Row count and last open_time per series: enough to tell whether the data changed."""
    per_series = (
        frame.group_by("market", "symbol", "interval")
        .agg(pl.len().alias("rows"), pl.col("open_time").max().alias("last_open_time"))
        .sort("market", "symbol", "interval")
    )
    return {
        f"{r['market']}/{r['symbol']}/{r['interval']}": {
            "rows": int(r["rows"]),
            "last_open_time": r["last_open_time"].isoformat(),
        }
        for r in per_series.iter_rows(named=True)
    }
