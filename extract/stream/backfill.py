"""Gap filling over REST through the extract module (pacing, retries and parsing are its own).

A gap is (after, before): the newest candle known and the first live event seen
on a (re)connect. Every candle strictly between them has closed (a later one is
live), so the page range stops at before - 1 ms and no forming candle is fetched.
"""

from __future__ import annotations

import threading

import polars as pl

from extract.rest import RestSource, rows_to_frame
from klinehouse import klines
from klinehouse.settings import Settings


class RestBackfill:
    """Callable (market, symbol, interval, after_ms, before_ms) -> closed candles, source 'rest'."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._sources: dict[str, RestSource] = {}
        self._lock = threading.Lock()

    def _source(self, market: str) -> RestSource:
        with self._lock:
            if market not in self._sources:
                self._sources[market] = RestSource(market, settings=self.settings)
            return self._sources[market]

    def __call__(
        self, market: str, symbol: str, interval: str, after_ms: int, before_ms: int
    ) -> pl.DataFrame:
        rows = self._source(market).klines_range(symbol, interval, after_ms + 1, before_ms - 1)
        if not rows:
            return pl.DataFrame(schema=klines.polars_schema())
        frame = rows_to_frame(rows, market=market, symbol=symbol, interval=interval)
        # The range is by open_time already; the filter guards against a server that
        # answers with more than it was asked for.
        return frame.filter(
            (pl.col("open_time").dt.epoch("ms") > after_ms)
            & (pl.col("open_time").dt.epoch("ms") < before_ms)
        )
