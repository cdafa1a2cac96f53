"""Load kline frames into raw.binance_klines: COPY into a staging table, then one upsert.

Each batch is one transaction: CSV COPY into a temporary table (the fastest way
psycopg offers to move rows), then one `INSERT … ON CONFLICT DO UPDATE` of only the
staged rows that are new or differ from raw (a join on the key filters the rest
out first), so a reload of the same rows writes, locks and (on TimescaleDB)
decompresses nothing, and a row Binance revised is updated and counted. `xmax = 0` on the returned rows tells an insert
from an update. Columns a source lacks (NULL, e.g. freqtrade's trade count) never
erase values already stored. When raw holds nothing yet in a batch's key ranges,
the batch is COPYed straight into raw (see `_load_batch`). A batch that inserts rows
also records its series in the catalogue `serving.series` (klinehouse.series), in
the same transaction.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl
import psycopg
from psycopg import sql

from klinehouse import db, klines, series
from klinehouse.errors import KlinehouseError
from klinehouse.settings import get_settings

TABLE = sql.Identifier("raw", "binance_klines")
STAGE = sql.Identifier("klinehouse_stage")
DEFAULT_BATCH_ROWS = 500_000


@dataclass(frozen=True)
class LoadStats:
    inserted: int = 0
    revised: int = 0
    unchanged: int = 0

    @property
    def staged(self) -> int:
        return self.inserted + self.revised + self.unchanged

    @property
    def changed(self) -> int:
        return self.inserted + self.revised

    def __add__(self, other: LoadStats) -> LoadStats:
        return LoadStats(
            self.inserted + other.inserted,
            self.revised + other.revised,
            self.unchanged + other.unchanged,
        )


def loader_url() -> str:
    """LOADER_DATABASE_URL (klinehouse_loader), else DATABASE_URL: the URL loads run as."""
    return get_settings().loader_url()


def conform(df: pl.DataFrame) -> pl.DataFrame:
    """The frame in the kline schema's column order and types; names what does not fit."""
    schema = klines.polars_schema()
    missing = [name for name in schema if name not in df.columns]
    if missing:
        raise KlinehouseError(f"kline frame lacks columns {missing}")
    try:
        return df.select(pl.col(name).cast(dtype) for name, dtype in schema.items())
    except pl.exceptions.PolarsError as exc:
        raise KlinehouseError(f"kline frame does not fit the kline schema: {exc}") from exc


def _stage_ddl() -> sql.Composed:
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.sql_type)) for c in klines.COLUMNS
    )
    return sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(STAGE, columns)


def _upsert_sql() -> sql.Composed:
    names = sql.SQL(", ").join(map(sql.Identifier, klines.COLUMN_NAMES))
    staged = sql.SQL(", ").join(
        sql.SQL("s.{}").format(sql.Identifier(n)) for n in klines.COLUMN_NAMES
    )
    keys = sql.SQL(", ").join(map(sql.Identifier, klines.KEY))
    joined = sql.SQL(" AND ").join(
        sql.SQL("r.{0} = s.{0}").format(sql.Identifier(k)) for k in klines.KEY
    )
    compared = [c for c in klines.COLUMNS if c.name in klines.VALUE_COLUMNS and c.name != "source"]

    def incoming(c: klines.Column, new: str, old: str = "t") -> sql.Composable:
        # A NULL from a source that lacks the column keeps what is stored.
        if c.nullable:
            return sql.SQL("COALESCE({1}.{0}, {2}.{0})").format(
                sql.Identifier(c.name), sql.SQL(new), sql.SQL(old)
            )
        return sql.SQL("{1}.{0}").format(sql.Identifier(c.name), sql.SQL(new))

    def differs(new: str, old: str) -> sql.Composable:
        stored = sql.SQL(", ").join(
            sql.SQL("{}.{}").format(sql.SQL(old), sql.Identifier(c.name)) for c in compared
        )
        return sql.SQL("({}) IS DISTINCT FROM ({})").format(
            stored, sql.SQL(", ").join(incoming(c, new, old) for c in compared)
        )

    updates = sql.SQL(", ").join(
        [
            *(
                sql.SQL("{} = {}").format(sql.Identifier(c.name), incoming(c, "EXCLUDED"))
                for c in compared
            ),
            sql.SQL("source = EXCLUDED.source"),
            sql.SQL("ingested_at = now()"),
        ]
    )
    # Unchanged rows are filtered out against raw (a join on the key) before the INSERT: fed
    # to ON CONFLICT they would be row-locked for nothing, and on TimescaleDB they decompress
    # the chunks they touch. The ON CONFLICT WHERE still guards a row a concurrent writer
    # landed after the join looked.
    return sql.SQL(
        "WITH changed AS ("
        " INSERT INTO {table} AS t ({names})"
        " SELECT {staged} FROM {stage} AS s LEFT JOIN {table} AS r ON {joined}"
        " WHERE r.open_time IS NULL OR {differs_staged}"
        " ON CONFLICT ({keys}) DO UPDATE SET {updates}"
        " WHERE {differs_excluded}"
        " RETURNING (t.xmax = 0) AS inserted)"
        " SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM changed"
    ).format(
        table=TABLE,
        names=names,
        staged=staged,
        stage=STAGE,
        joined=joined,
        differs_staged=differs("s", "r"),
        keys=keys,
        updates=updates,
        differs_excluded=differs("EXCLUDED", "t"),
    )


def _csv(df: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    df.write_csv(buffer, include_header=False, null_value="")
    return buffer.getvalue()


def copy_frame(conn: psycopg.Connection, table: sql.Composable, df: pl.DataFrame) -> None:
    """COPY a conformed frame into `table` (same columns as the kline schema)."""
    names = sql.SQL(", ").join(map(sql.Identifier, klines.COLUMN_NAMES))
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(table, names)
    with conn.cursor().copy(statement) as copy:
        data = _csv(df)
        view = memoryview(data)
        for start in range(0, len(data), 1 << 20):
            copy.write(view[start : start + (1 << 20)])


def _prepare(df: pl.DataFrame) -> pl.DataFrame:
    # Sorted by key, inserts walk the primary-key index in order (fewer page visits).
    return (
        conform(df)
        .unique(subset=list(klines.KEY), keep="last", maintain_order=True)
        .sort(list(klines.KEY))
    )


def _ranges_empty(conn: psycopg.Connection, batch: pl.DataFrame) -> bool:
    """True when raw holds no row in any series' open_time range of the batch."""
    ranges = batch.group_by(["market", "symbol", "interval"]).agg(
        pl.col("open_time").min().alias("first"), pl.col("open_time").max().alias("last")
    )
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM unnest(%s::text[], %s::text[], %s::text[],"
        " %s::timestamptz[], %s::timestamptz[]) AS r(market, symbol, interval, first, last)"
        " JOIN raw.binance_klines k ON k.market = r.market AND k.symbol = r.symbol"
        " AND k.interval = r.interval AND k.open_time BETWEEN r.first AND r.last)",
        [ranges[c].to_list() for c in ("market", "symbol", "interval", "first", "last")],
    ).fetchone()
    return row is not None and not row[0]


def _load_batch(
    conn: psycopg.Connection, batch: pl.DataFrame, upsert: sql.Composed, direct_copy: bool
) -> LoadStats:
    """One batch in one transaction.

    Fast path: when raw holds nothing in the batch's key ranges (first loads and
    backfills), the rows are COPYed straight into raw, saving the stage round.
    A concurrent writer that lands a key in between makes that COPY fail on the
    primary key; the transaction rolls back and the staged upsert runs instead.
    """
    try:
        with conn.transaction():
            if direct_copy and _ranges_empty(conn, batch):
                copy_frame(conn, TABLE, batch)
                series.record(conn, batch)
                return LoadStats(inserted=batch.height)
    except psycopg.errors.UniqueViolation:
        pass
    with conn.transaction():
        # ON COMMIT DROP fires at the outermost commit: inside a caller's transaction the
        # previous batch's stage still exists.
        conn.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(STAGE))
        conn.execute(_stage_ddl())
        copy_frame(conn, STAGE, batch)
        row = conn.execute(upsert).fetchone()
        inserted, revised = (int(row[0]), int(row[1])) if row else (0, 0)
        if inserted:  # the catalogue follows in the same transaction (a reload locks nothing)
            series.record(conn, batch)
    return LoadStats(inserted, revised, batch.height - inserted - revised)


def load_frames(
    frames: Iterable[pl.DataFrame],
    *,
    url: str | None = None,
    conn: psycopg.Connection | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    direct_copy: bool = True,
) -> LoadStats:
    """Load a stream of kline frames over one connection, one transaction per batch.

    Frames are consumed lazily, so a producer (the lake reader) can prepare the next
    frame while this one loads. Duplicate keys inside a frame collapse to the last row
    (ON CONFLICT cannot touch a row twice in one statement). `direct_copy=False`
    always stages (benchmarks compare both paths). With `conn`, the batches run on the
    caller's connection, inside its transaction when one is open (the stream ingester
    commits candles and their NOTIFY together).
    """
    if conn is not None:
        return _load_all(conn, frames, batch_rows, direct_copy)
    with db.connect(url or loader_url()) as own:
        # The stage lives in temp buffers (default 8MB): sized so a batch stays in memory.
        # Only settable before the session first touches a temp table, hence here.
        own.execute("SET temp_buffers = '256MB'")
        own.commit()
        return _load_all(own, frames, batch_rows, direct_copy)


def _load_all(
    conn: psycopg.Connection, frames: Iterable[pl.DataFrame], batch_rows: int, direct_copy: bool
) -> LoadStats:
    stats = LoadStats()
    upsert = _upsert_sql()
    for df in frames:
        frame = _prepare(df)
        for offset in range(0, frame.height, batch_rows):
            stats = stats + _load_batch(conn, frame.slice(offset, batch_rows), upsert, direct_copy)
    return stats


def load_frame(
    df: pl.DataFrame,
    *,
    url: str | None = None,
    conn: psycopg.Connection | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> LoadStats:
    """Upsert a kline frame into raw.binance_klines, one transaction per batch of rows
    (savepoints inside the caller's transaction when `conn` has one open)."""
    if df.is_empty():
        return LoadStats()
    return load_frames([df], url=url, conn=conn, batch_rows=batch_rows)
