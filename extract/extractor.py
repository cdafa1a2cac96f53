"""`klinehouse extract`: any market, symbols and intervals -> lake -> raw.

For each series (market, symbol, interval) the range is planned first:
incremental by default (after the newest open_time stored in raw), or the
explicit --start/--end. With `--source auto` whole past months come from the
data.binance.vision archives (checksummed) and the rest from REST; `rest` and
`archive` force one. Pages and archive files of all series are fetched by one
thread pool sharing one weight pacer; each series is then preprocessed, written
to the lake and loaded as it completes. A series that fails (unknown symbol,
checksum mismatch, retries exhausted) is reported by name, loads nothing, and
does not stop the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

import polars as pl

from extract import archive, lake_store
from extract.frames import collapse_duplicates, invariant_violations
from extract.importers import ingest_objects
from extract.rest import RestSource, rows_to_frame
from extract.summary import RunSummary
from klinehouse import db, klines
from klinehouse.errors import KlinehouseError
from klinehouse.settings import Settings, get_settings

Source = Literal["auto", "rest", "archive"]
_PAGES_PER_TASK = 4  # a time range is split so that workers fetch one series in parallel


class ProgressSink(Protocol):
    def start(self, label: str, total: int | None) -> None: ...
    def advance(self, label: str, rows: int) -> None: ...
    def finish(self, label: str, message: str) -> None: ...


@dataclass(frozen=True)
class ExtractRequest:
    market: str
    symbols: list[str]
    intervals: list[str]
    start: datetime | None = None
    end: datetime | None = None
    source: Source = "auto"
    load: bool = True
    dry_run: bool = False  # fetch and preprocess only: nothing written to the lake or raw


@dataclass
class _Series:
    symbol: str
    interval: str
    start_ms: int
    end_ms: int
    futures: list[Future[pl.DataFrame]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.symbol} {self.interval}"


def _ms(value: datetime) -> int:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def _month_start_ms(ms: int, ahead: int = 0) -> int:
    d = datetime.fromtimestamp(ms / 1000, UTC)
    index = d.year * 12 + d.month - 1 + ahead
    return _ms(datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC))


def stored_latest(
    market: str, symbol: str, interval: str, url: str | None = None
) -> datetime | None:
    """The newest open_time in raw for a series (None when nothing is stored)."""
    with db.connect(url) as conn:
        row = conn.execute(
            "SELECT max(open_time) FROM raw.binance_klines "
            "WHERE market = %s AND symbol = %s AND interval = %s",
            (market, symbol, interval),
        ).fetchone()
    return row[0] if row else None


def plan_segments(
    start_ms: int, end_ms: int, now_ms: int, source: Source
) -> list[tuple[str, int, int]]:
    """(kind, first_ms, last_ms) pieces: kind 'month' (archive) or 'rest', covering the range."""
    if source == "rest":
        return [("rest", start_ms, end_ms)]
    segments: list[tuple[str, int, int]] = []
    cursor = start_ms
    month = _month_start_ms(start_ms)
    while cursor <= end_ms:
        nxt = _month_start_ms(month, 1)
        whole = month >= start_ms and nxt - 1 <= end_ms and nxt <= now_ms
        if whole or (source == "archive" and nxt <= now_ms):
            segments.append(("month", max(cursor, month), min(end_ms, nxt - 1)))
        elif source == "archive":
            # The running month has no monthly file yet: its past days have daily files.
            day = max(cursor, month) // 86_400_000 * 86_400_000
            while day <= end_ms and day + 86_400_000 <= now_ms:
                segments.append(("day", max(cursor, day), min(end_ms, day + 86_400_000 - 1)))
                day += 86_400_000
        else:
            segments.append(("rest", cursor, min(end_ms, nxt - 1)))
        cursor = nxt
        month = nxt
    merged: list[tuple[str, int, int]] = []
    for kind, a, b in segments:  # adjacent REST pieces become one range
        if merged and kind == "rest" and merged[-1][0] == "rest":
            merged[-1] = ("rest", merged[-1][1], b)
        else:
            merged.append((kind, a, b))
    return merged


class Extractor:
    def __init__(
        self,
        request: ExtractRequest,
        *,
        url: str | None = None,
        settings: Settings | None = None,
        progress: ProgressSink | None = None,
        log: Callable[[str], None] | None = None,
        workers: int = 8,
        rest: RestSource | None = None,
    ) -> None:
        klines.check_market(request.market)
        for interval in request.intervals:
            try:
                klines.interval_length(interval)
            except ValueError as exc:
                raise KlinehouseError(str(exc)) from exc
        self.request = request
        self.url = url
        self.settings = settings or get_settings()
        self.progress = progress
        self.log = log or (lambda _line: None)
        self.workers = workers
        self.rest = rest or RestSource(request.market, settings=self.settings)
        self.summary = RunSummary(run_id=lake_store.new_run_id())

    def run(self) -> RunSummary:
        started = time.monotonic()
        market = self.request.market
        now_ms = self.rest.server_time_ms()
        objects: list[lake_store.LakeObject] = []
        with ThreadPoolExecutor(self.workers) as pool:
            series = [
                s
                for symbol in self.request.symbols
                for interval in self.request.intervals
                if (s := self._plan(symbol.upper(), interval, now_ms, pool)) is not None
            ]
            for s in series:
                try:
                    frames = [f.result() for f in s.futures]
                except KlinehouseError as exc:
                    for f in s.futures:
                        f.cancel()
                    self._fail(s.label, str(exc))
                    continue
                objects += self._finish(s, frames, now_ms)
        lake_store.write_manifest(
            self.summary.run_id,
            objects,
            {"command": "extract", "market": market, "source": self.request.source},
            self.settings,
        )
        counters = self.rest.counters
        self.summary.requests += counters.requests
        self.summary.throttled += counters.throttled
        self.summary.retries += counters.retries
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def _fail(self, label: str, message: str) -> None:
        self.summary.failures.append(f"{self.request.market} {label}: {message}")
        if self.progress:
            self.progress.finish(label, f"FAILED: {message}")
        self.log(f"{self.request.market} {label}: FAILED: {message}")

    def _plan(
        self, symbol: str, interval: str, now_ms: int, pool: ThreadPoolExecutor
    ) -> _Series | None:
        label = f"{symbol} {interval}"
        if self.request.start is not None:
            start_ms = _ms(self.request.start)
        else:
            latest = stored_latest(self.request.market, symbol, interval, self.url)
            if latest is None:
                self._fail(label, "nothing stored yet: give --start for the first backfill")
                return None
            start_ms = _ms(latest) + 1
        end_ms = now_ms - 1 if self.request.end is None else min(_ms(self.request.end), now_ms - 1)
        s = _Series(symbol, interval, start_ms, end_ms)
        step = klines.interval_length(interval)
        total = int((end_ms - start_ms) // (step.total_seconds() * 1000)) + 1 if step else None
        if self.progress:
            self.progress.start(label, max(total or 0, 0) if start_ms <= end_ms else 0)
        if start_ms > end_ms:
            return s
        for kind, a, b in plan_segments(start_ms, end_ms, now_ms, self.request.source):
            if kind == "rest":
                for ca, cb in self._chunks(interval, a, b):
                    s.futures.append(pool.submit(self._rest_chunk, s, ca, cb))
            else:
                s.futures.append(pool.submit(self._archive_piece, s, kind, a, b))
        return s

    def _chunks(self, interval: str, a: int, b: int) -> list[tuple[int, int]]:
        step = klines.interval_length(interval)
        if step is None:
            return [(a, b)]
        span = int(step.total_seconds() * 1000) * self.rest.page_size * _PAGES_PER_TASK
        return [(x, min(b, x + span - 1)) for x in range(a, b + 1, span)]

    def _rest_chunk(self, s: _Series, a: int, b: int) -> pl.DataFrame:
        def on_page(n: int) -> None:
            if self.progress:
                self.progress.advance(s.label, n)

        rows = self.rest.klines_range(s.symbol, s.interval, a, b, on_page)
        return rows_to_frame(rows, market=self.request.market, symbol=s.symbol, interval=s.interval)

    def _archive_piece(self, s: _Series, kind: str, a: int, b: int) -> pl.DataFrame:
        day = datetime.fromtimestamp(a / 1000, UTC)
        period = day.strftime("%Y-%m-%d" if kind == "day" else "%Y-%m")
        url = archive.archive_url(
            self.settings.binance_archive_url, self.request.market, s.symbol, s.interval, period
        )
        self.rest.counters.add(requests=2)  # the zip and its .CHECKSUM
        try:
            data = archive.download(url)
        except archive.ArchiveNotFound:
            if self.request.source == "archive":
                self.log(f"{url}: not published; nothing for {period}")
                return pl.DataFrame(schema=klines.polars_schema())
            return self._rest_chunk(s, a, b)  # not published (yet): REST covers the month
        df = archive.read_archive_csv(
            data, market=self.request.market, symbol=s.symbol, interval=s.interval
        )
        if self.progress:
            self.progress.advance(s.label, df.height)
        return df

    def _finish(
        self, s: _Series, frames: list[pl.DataFrame], now_ms: int
    ) -> list[lake_store.LakeObject]:
        df = pl.concat(frames) if frames else pl.DataFrame(schema=klines.polars_schema())
        start = datetime.fromtimestamp(s.start_ms / 1000, UTC)
        end = datetime.fromtimestamp(s.end_ms / 1000, UTC)
        df = df.filter(pl.col("open_time").is_between(start, end))
        self.summary.fetched += df.height
        now = datetime.fromtimestamp(now_ms / 1000, UTC)
        forming = df["close_time"] >= now
        self.summary.dropped_forming += int(forming.sum())
        df, dropped = collapse_duplicates(df.filter(~forming))
        self.summary.duplicates_collapsed += dropped
        self.summary.add_violations(invariant_violations(df))
        if self.request.dry_run:
            if self.progress:
                self.progress.finish(s.label, f"{df.height} rows (dry run)")
            self.log(f"{self.request.market} {s.label}: {df.height} rows (dry run)")
            return []
        objects, stats = ingest_objects(
            df, load=self.request.load, url=self.url, settings=self.settings
        )
        self.summary.written_to_lake += df.height
        self.summary.load = self.summary.load + stats
        message = f"{df.height} rows, {stats.inserted} new, {stats.revised} revised"
        if self.progress:
            self.progress.finish(s.label, message)
        self.log(f"{self.request.market} {s.label}: {message}")
        return objects


def run_extract(
    request: ExtractRequest,
    *,
    url: str | None = None,
    progress: ProgressSink | None = None,
    log: Callable[[str], None] | None = None,
    workers: int = 8,
) -> RunSummary:
    """Extract, write to the lake and (unless request.load is False) load; see the module doc."""
    return Extractor(request, url=url, progress=progress, log=log, workers=workers).run()
