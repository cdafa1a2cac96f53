"""The lake's copy of streamed candles, written on a slower cadence than the database.

Committed candles collect here per series; a series' candles are written when a
candle of a later hour arrives (its hour is complete) or when the oldest has
waited `max_seconds`, and everything left is written on shutdown. Writing goes
through `extract.lake_store.write_frame`, which merges into the day partition
of the batch extract: one layout, and a rewrite never drops rows already there.
"""

from __future__ import annotations

import time

import polars as pl

from extract.lake_store import LakeObject, write_frame
from klinehouse.settings import Settings

HOUR_US = 3_600_000_000


class LakeSpool:
    def __init__(self, max_seconds: float) -> None:
        self.max_seconds = max_seconds
        self._frames: list[pl.DataFrame] = []
        self._oldest: float | None = None

    def __len__(self) -> int:
        return sum(f.height for f in self._frames)

    def add(self, df: pl.DataFrame) -> None:
        if df.is_empty():
            return
        self._frames.append(df)
        if self._oldest is None:
            self._oldest = time.monotonic()

    def take_due(self, *, everything: bool = False) -> pl.DataFrame:
        """The rows to write now: complete hours of each series, or all when old or asked."""
        if not self._frames:
            return pl.DataFrame()
        spooled = pl.concat(self._frames)
        aged = self._oldest is not None and time.monotonic() - self._oldest >= self.max_seconds
        if everything or aged:
            self._frames, self._oldest = [], None
            return spooled
        hour = (pl.col("open_time").dt.epoch("us") // HOUR_US).alias("_hour")
        newest = hour.max().over("market", "symbol", "interval")
        flagged = spooled.with_columns(_done=hour < newest)
        due = flagged.filter(pl.col("_done")).drop("_done")
        rest = flagged.filter(~pl.col("_done")).drop("_done")
        self._frames = [rest] if not rest.is_empty() else []
        if not self._frames:
            self._oldest = None
        return due


def write(df: pl.DataFrame, settings: Settings) -> list[LakeObject]:
    return write_frame(df, settings=settings) if not df.is_empty() else []
