"""The training set as compact arrays: what the quantized-pool fit path (`training.pools`)
reads, without a float64 copy of the matrix in polars, pandas or CatBoost.

`load_matrix` streams the labelled rows of `marts.candle_features` ⋈
`marts.candle_labels` (the query of `training.dataset`) through `COPY … TO STDOUT`
in chunks of ~32 MB, each parsed and written at once into arrays allocated for the
whole set (counted first): float32 numeric features, int16 symbol codes, int64
open times and float32 labels (the next bar's, and those over 4 and 24 bars the
other candidates predict, NaN where unknown) — about 80 bytes a row. Only one chunk exists as a
polars frame at any time. The rows are then put in (open_time, symbol) order, one
column at a time (a temporary of one column, never of the matrix).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from psycopg import sql

from klinehouse.db import connect
from klinehouse.errors import KlinehouseError
from klinehouse.feature_read import OPEN_TIME_US
from klinehouse.features import LABEL_CLASS, LABEL_RETURN, LABELS, NUMERIC_FEATURES
from training.dataset import DatasetSpec, _parse, _query, copy_csv_chunks, require_marts

# the labels over more than one bar (`klinehouse.features.LABELS` but the next bar's)
LONGER_LABELS = tuple(c for c in LABELS if c not in (LABEL_CLASS, LABEL_RETURN))


@dataclass
class TrainingMatrix:
    """Labelled rows in (open_time, symbol) order, column by column."""

    numeric: np.ndarray  # (rows, len(NUMERIC_FEATURES)) float32, C order; NaN for NULL
    symbol: np.ndarray  # (rows,) int16 codes into `symbols`
    symbols: tuple[str, ...]  # sorted
    open_time_us: np.ndarray  # (rows,) int64 epoch microseconds
    up: np.ndarray  # (rows,) float32 0/1: target_up
    log_return: np.ndarray  # (rows,) float32: target_log_return_1
    # LONGER_LABELS by name, (rows,) float32 each (0/1 or a log return; NaN where unknown)
    longer: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return int(self.open_time_us.shape[0])

    @property
    def has_features(self) -> bool:
        return self.numeric.shape[0] == self.rows

    def drop_features(self) -> None:
        """Frees the numeric features (the matrix's largest part, 44 bytes a row) once
        every pool a training needs is quantized (`training.pools.quantized_files`); the
        symbols, open times and labels stay."""
        self.numeric = np.empty((0, self.numeric.shape[1]), dtype=np.float32)

    def label(self, name: str) -> np.ndarray:
        """The label column `name` of `klinehouse.features.LABELS`."""
        if name == LABEL_CLASS:
            return self.up
        if name == LABEL_RETURN:
            return self.log_return
        if name not in self.longer:
            raise KlinehouseError(f"the training matrix has no label {name!r}")
        return self.longer[name]

    def symbol_bytes(self, rows: slice) -> np.ndarray:
        """The symbol of `rows` as CatBoost's categorical input: (n, 1) object array of
        bytes, one shared bytes object per symbol (8 bytes a row)."""
        names = np.array([s.encode() for s in self.symbols], dtype=object)
        return names[self.symbol[rows]].reshape(-1, 1)

    def holdout(self, *, fraction: float, gap_bars: int) -> tuple[slice, slice]:
        """(fit, validation) rows as `training.folds.holdout` splits a frame: the
        validation is the last `fraction` of bars after a purge gap (contiguous ranges,
        the rows being in time order)."""
        grid = np.unique(self.open_time_us)
        start = int(len(grid) * (1.0 - fraction))
        if start - gap_bars < 2 or start >= len(grid) - 1:
            raise KlinehouseError(f"{len(grid)} training bars are too few for a validation split")
        fit_end = grid[start - gap_bars - 1]
        val_start = grid[start]
        fit_stop = int(np.searchsorted(self.open_time_us, fit_end, side="right"))
        val_from = int(np.searchsorted(self.open_time_us, val_start, side="left"))
        return slice(0, fit_stop), slice(val_from, self.rows)

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> TrainingMatrix:
        """The matrix of labelled rows already in a frame (`training.dataset.labelled`)."""
        symbols = tuple(sorted(frame.get_column("symbol").unique().to_list()))
        codes = {s: k for k, s in enumerate(symbols)}
        return cls(
            numeric=np.ascontiguousarray(
                frame.select(pl.col(NUMERIC_FEATURES).cast(pl.Float32)).to_numpy(),
                dtype=np.float32,
            ),
            symbol=frame.get_column("symbol")
            .replace_strict(codes, return_dtype=pl.Int16)
            .to_numpy(),
            symbols=symbols,
            open_time_us=frame.get_column("open_time").dt.epoch("us").to_numpy(),
            up=frame.get_column(LABEL_CLASS).cast(pl.Float32).to_numpy(),
            log_return=frame.get_column(LABEL_RETURN).cast(pl.Float32).to_numpy(),
            longer={
                c: frame.get_column(c).cast(pl.Float32).fill_null(np.nan).to_numpy()
                for c in LONGER_LABELS
                if c in frame.columns
            },
        )


def _labelled_query(spec: DatasetSpec, part: int = 0, parts: int = 1) -> sql.Composed:
    return sql.SQL("SELECT * FROM ({}) q WHERE {} IS NOT NULL AND {} IS NOT NULL").format(
        _query(spec, part, parts), sql.Identifier(LABEL_CLASS), sql.Identifier(LABEL_RETURN)
    )


class _Filler:
    """Writes parsed chunks into the preallocated arrays at the next free rows."""

    def __init__(self, rows: int, symbols: tuple[str, ...]) -> None:
        self.matrix = TrainingMatrix(
            numeric=np.empty((rows, len(NUMERIC_FEATURES)), dtype=np.float32),
            symbol=np.empty(rows, dtype=np.int16),
            symbols=symbols,
            open_time_us=np.empty(rows, dtype=np.int64),
            up=np.empty(rows, dtype=np.float32),
            log_return=np.empty(rows, dtype=np.float32),
            longer={c: np.empty(rows, dtype=np.float32) for c in LONGER_LABELS},
        )
        self._codes = {s: k for k, s in enumerate(symbols)}
        self._next = 0
        self._lock = threading.Lock()

    def add(self, chunk: pl.DataFrame) -> None:
        n = chunk.height
        with self._lock:
            at, self._next = self._next, self._next + n
        if self._next > self.matrix.rows:
            raise KlinehouseError("the marts changed while the training set was read: retry")
        m, rows = self.matrix, slice(at, at + n)
        # polars writes each float32 column straight into the matrix's column
        m.numeric[rows] = chunk.select(pl.col(NUMERIC_FEATURES).cast(pl.Float32)).to_numpy()
        m.symbol[rows] = (
            chunk.get_column("symbol").replace_strict(self._codes, return_dtype=pl.Int16).to_numpy()
        )
        m.open_time_us[rows] = chunk.get_column(OPEN_TIME_US).to_numpy()
        m.up[rows] = chunk.get_column(LABEL_CLASS).cast(pl.Float32).to_numpy()
        m.log_return[rows] = chunk.get_column(LABEL_RETURN).cast(pl.Float32).to_numpy()
        for name, column in m.longer.items():
            column[rows] = chunk.get_column(name).cast(pl.Float32).fill_null(np.nan).to_numpy()

    def finish(self) -> TrainingMatrix:
        if self._next != self.matrix.rows:
            raise KlinehouseError("the marts changed while the training set was read: retry")
        m = self.matrix
        order = np.lexsort((m.symbol, m.open_time_us))
        for column in (m.symbol, m.open_time_us, m.up, m.log_return, *m.longer.values()):
            column[:] = column[order]
        for j in range(m.numeric.shape[1]):  # one column's temporary at a time
            m.numeric[:, j] = m.numeric[order, j]
        return m


def _copy_into(filler: _Filler, spec: DatasetSpec, url: str | None, part: int, parts: int) -> None:
    with connect(url) as conn:
        conn.execute("SET LOCAL enable_nestloop = off")  # see training.dataset._copy_part
        copy_sql = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(
            _labelled_query(spec, part, parts)
        )
        for text in copy_csv_chunks(conn, copy_sql):
            filler.add(_parse(text))


def load_matrix(spec: DatasetSpec, *, url: str | None = None, workers: int = 2) -> TrainingMatrix:
    """The labelled rows of `spec` as a `TrainingMatrix` (see the module docstring)."""
    spec.validate()
    if workers < 1:
        raise KlinehouseError(f"workers must be at least 1, got {workers}")
    require_marts(url)
    with connect(url) as conn:
        counts = conn.execute(
            sql.SQL("SELECT symbol, count(*) FROM ({}) s GROUP BY symbol ORDER BY symbol").format(
                _labelled_query(spec)
            )
        ).fetchall()
    if not counts:
        raise KlinehouseError(
            f"no labelled rows in the marts for {spec.market} {spec.interval}: load and transform"
            " data first"
        )
    filler = _Filler(sum(int(n) for _, n in counts), tuple(str(s) for s, _ in counts))
    with ThreadPoolExecutor(workers) as pool:
        for future in [
            pool.submit(_copy_into, filler, spec, url, k, workers) for k in range(workers)
        ]:
            future.result()
    return filler.finish()
