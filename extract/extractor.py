"""`klinehouse extract`: any market, symbols and intervals -> lake -> raw.

For each series (market, symbol, interval) the range is planned first:
incremental by default (after the newest open_time stored in raw), or the
explicit --start/--end. With `--source auto` whole past months come from the
data.binance.vision archives (checksummed) and the rest from REST; `rest` and
`archive` force one. Pages and archive files of all series are fetched by one
thread pool sharing one weight pacer; each series is then preprocessed, written
to the lake and loaded as it completes. A series that fails (unknown symbol,
retries exhausted, the database or the lake gone for longer than the bounded
retries) is reported by name, loads nothing, and does not stop the others.

`--end` is exclusive (the bar opening at `--end` is not fetched), over REST and
archives alike; a `--start` before Binance's first kline is clamped to it.
With `--source auto` a month whose archive fails its checksum comes from REST.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol, TypeVar

import polars as pl

from extract import archive, lake_store
from extract.frames import KlineParseError, collapse_duplicates, invariant_violations
from extract.importers import ingest_file
from extract.rest import RestSource, rows_to_frame
from extract.revisions import RevisionRefused
from extract.summary import RunSummary
from klinehouse import db, klines
from klinehouse.errors import KlinehouseError
from klinehouse.settings import Settings, get_settings

Source = Literal["auto", "rest", "archive"]
T = TypeVar("T")
_PAGES_PER_TASK = 4  # a time range is split so that workers fetch one series in parallel
# Binance's first klines (spot opened in July 2017): an earlier --start is clamped to this.
BINANCE_FIRST_KLINE = datetime(2017, 7, 1, tzinfo=UTC)
# A series whose load meets a lost database or lake is retried this often, with backoff.
SERIES_ATTEMPTS = 5
SERIES_BACKOFF_SECONDS = 0.5
# Deterministic failures: retrying cannot help.
_FINAL_ERRORS = (KlineParseError, RevisionRefused, archive.ChecksumMismatch)


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
    accept_revisions: bool = False  # load even what extract.revisions would refuse


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

    def _check_range(self, now_ms: int) -> None:
        start, end = self.request.start, self.request.end
        now = datetime.fromtimestamp(now_ms / 1000, UTC)
        if start is not None and start >= now:
            raise KlinehouseError(
                f"--start {start.isoformat()} is in the future (the server's time is "
                f"{now.isoformat(timespec='seconds')})"
            )
        if start is not None and end is not None and start >= end:
            raise KlinehouseError(
                f"--start {start.isoformat()} is not before --end {end.isoformat()} "
                "(--end is exclusive)"
            )
        if end is not None and end <= BINANCE_FIRST_KLINE:
            raise KlinehouseError(
                f"--end {end.isoformat()} is before Binance's first klines "
                f"({BINANCE_FIRST_KLINE.date().isoformat()})"
            )

    def run(self) -> RunSummary:
        started = time.monotonic()
        market = self.request.market
        now_ms = self.rest.server_time_ms()
        self._check_range(now_ms)
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
                except Exception as exc:  # one series fails, the run goes on
                    for f in s.futures:
                        f.cancel()
                    self._fail(s.label, _reason(exc))
                    continue
                try:
                    objects += self._finish(s, frames, now_ms)
                except Exception as exc:
                    self._fail(s.label, _reason(exc))
        try:
            self._with_retries(
                "run manifest",
                lambda: lake_store.write_manifest(
                    self.summary.run_id,
                    objects,
                    {"command": "extract", "market": market, "source": self.request.source},
                    self.settings,
                ),
            )
        except Exception as exc:
            self.summary.failures.append(f"run manifest {self.summary.run_id}: {_reason(exc)}")
        counters = self.rest.counters
        self.summary.requests += counters.requests
        self.summary.throttled += counters.throttled
        self.summary.retries += counters.retries
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def _with_retries(self, label: str, work: Callable[[], T]) -> T:
        """`work`, retried with exponential backoff while the database or lake is away."""
        for attempt in range(1, SERIES_ATTEMPTS + 1):
            try:
                return work()
            except _FINAL_ERRORS:
                raise
            except Exception as exc:
                if attempt == SERIES_ATTEMPTS:
                    raise KlinehouseError(
                        f"gave up after {attempt} attempts: {_reason(exc)}"
                    ) from exc
                self.summary.retries += 1
                self.log(f"{self.request.market} {label}: retrying ({_reason(exc)})")
                time.sleep(SERIES_BACKOFF_SECONDS * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

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
            if start_ms < _ms(BINANCE_FIRST_KLINE):
                self.log(
                    f"{self.request.market} {label}: --start {self.request.start.date()} is "
                    f"before Binance's first klines: starting at {BINANCE_FIRST_KLINE.date()}"
                )
                start_ms = _ms(BINANCE_FIRST_KLINE)
        else:
            try:
                latest = self._with_retries(
                    label, lambda: stored_latest(self.request.market, symbol, interval, self.url)
                )
            except Exception as exc:
                self._fail(label, _reason(exc))
                return None
            if latest is None:
                self._fail(label, "nothing stored yet: give --start for the first backfill")
                return None
            start_ms = _ms(latest) + 1
        # --end is exclusive: the last open_time fetched is 1 ms before it.
        end_ms = (
            now_ms - 1 if self.request.end is None else min(_ms(self.request.end) - 1, now_ms - 1)
        )
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
        except archive.ChecksumMismatch as exc:
            if self.request.source == "archive":
                raise
            self.log(f"{exc}; {s.label} {period} comes from REST instead")
            return self._rest_chunk(s, a, b)
        df = archive.read_archive_csv(
            data, market=self.request.market, symbol=s.symbol, interval=s.interval, what=url
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
        df = df.filter(~forming)
        if self.request.dry_run:
            df, dropped = collapse_duplicates(df)
            self.summary.duplicates_collapsed += dropped
            self.summary.add_violations(invariant_violations(df))
            if self.progress:
                self.progress.finish(s.label, f"{df.height} rows (dry run)")
            self.log(f"{self.request.market} {s.label}: {df.height} rows (dry run)")
            return []
        before = self.summary.load
        objects = self._with_retries(
            s.label,
            lambda: ingest_file(
                df,
                self.summary,
                what=f"{self.request.market} {s.label}",
                load=self.request.load,
                url=self.url,
                settings=self.settings,
                accept_revisions=self.request.accept_revisions,
            ),
        )
        inserted = self.summary.load.inserted - before.inserted
        revised = self.summary.load.revised - before.revised
        message = f"{df.height} rows, {inserted} new, {revised} revised"
        if self.progress:
            self.progress.finish(s.label, message)
        self.log(f"{self.request.market} {s.label}: {message}")
        return objects


def _reason(exc: BaseException) -> str:
    """One line: the message of our own errors, else the type and the first line."""
    text = str(exc).strip()
    if isinstance(exc, KlinehouseError):
        return text or type(exc).__name__
    first = text.splitlines()[0][:200] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


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
