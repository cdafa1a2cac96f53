"""The live ingester: Binance kline streams -> raw.binance_klines (+ NOTIFY) -> lake.

One asyncio loop runs:
- one websocket per <= 1024 streams (Binance's limit per connection), reading
  frames; each frame is parsed at once, forming updates (`x: false`) are
  dropped, closed candles go to the micro-batcher;
- the flusher, committing the batch in a worker thread through the loader's
  upsert when N candles or T seconds are reached, then NOTIFY;
- the gap filler: on every connect, the first live event of each series fixes
  the gap (newest candle known, that event) and closed candles in it are
  fetched over REST and committed the same way;
- the lake writer, on a slower cadence;
- optionally the /healthz server.

Reconnects use exponential backoff with jitter. stop() (SIGTERM/SIGINT) closes
the sockets, then commits everything received before returning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import polars as pl
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from extract.load import LoadStats
from extract.stream import lake_spool, sink
from extract.stream.batcher import MicroBatcher, Pending
from extract.stream.messages import (
    KlineEvent,
    MalformedMessage,
    Series,
    combined_stream_url,
    parse_frame,
    stream_name,
    to_frame,
)
from klinehouse import klines, paths
from klinehouse.errors import KlinehouseError
from klinehouse.settings import Settings, get_settings

log = logging.getLogger(__name__)

MAX_STREAMS_PER_CONNECTION = 1024
# Request lines beyond 8 KiB are refused by common servers: split long subscriptions.
MAX_URL_CHARS = 8000
LATENCY_SAMPLES = 100_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# (market, symbol, interval, after_ms exclusive, before_ms exclusive) -> closed candles
Backfill = Callable[[str, str, str, int, int], pl.DataFrame]


@dataclass(frozen=True)
class StreamOptions:
    market: str
    symbols: tuple[str, ...]
    intervals: tuple[str, ...]
    flush_rows: int = 500
    flush_seconds: float = 0.25
    lake_seconds: float = 3600.0
    lake: bool = True
    backfill: bool = True
    health_host: str = "0.0.0.0"
    health_port: int | None = None
    stale_after: float = 90.0
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    max_seconds: float | None = None
    shutdown_attempts: int = 5  # commits tried on shutdown before spilling to a file
    database_probe_seconds: float = 5.0  # /healthz asks the database this often

    def __post_init__(self) -> None:
        klines.check_market(self.market)
        for interval in self.intervals:
            klines.interval_length(interval)
        if not self.symbols or not self.intervals:
            raise ValueError("give at least one symbol and one interval")
        if self.flush_rows < 1 or self.flush_seconds <= 0:
            raise ValueError(
                f"--flush-rows must be >= 1 and --flush-seconds > 0 "
                f"(got {self.flush_rows} and {self.flush_seconds})"
            )
        if self.lake_seconds <= 0:
            raise ValueError(f"--lake-seconds must be > 0 (got {self.lake_seconds})")


@dataclass
class StreamStats:
    frames: int = 0
    forming: int = 0
    closed: int = 0
    committed: int = 0
    inserted: int = 0
    revised: int = 0
    unchanged: int = 0
    backfilled: int = 0
    lake_rows: int = 0
    flushes: int = 0
    flush_errors: int = 0
    connects: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    commit_seconds: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    unfilled_gaps: list[str] = field(default_factory=list)

    def latency_quantiles(self) -> dict[str, float | None]:
        """p50/p99 seconds from the closing frame's arrival to its commit (recent samples)."""
        if not self.latencies:
            return {"p50": None, "p99": None}
        ordered = sorted(self.latencies)

        def q(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

        return {"p50": q(0.50), "p99": q(0.99)}


def _connection_groups(base_url: str, streams: list[str]) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    for name in streams:
        group = groups[-1]
        if group and (
            len(group) >= MAX_STREAMS_PER_CONNECTION
            or len(combined_stream_url(base_url, [*group, name])) > MAX_URL_CHARS
        ):
            groups.append([])
        groups[-1].append(name)
    return groups


_WS_URL_SETTING = {
    "spot": "binance_ws_url",
    "usdm": "binance_futures_ws_url",
    "coinm": "binance_coinm_ws_url",
}


def ws_base_url(market: str, settings: Settings) -> str:
    """The market's websocket base URL; KlinehouseError names the variable when it is unusable."""
    name = _WS_URL_SETTING[klines.check_market(market)]
    url = str(getattr(settings, name))
    if urlsplit(url).scheme not in ("ws", "wss") or not urlsplit(url).hostname:
        raise KlinehouseError(
            f"KLINEHOUSE_{name.upper()} is {url!r}: expected a ws:// or wss:// URL"
        )
    return url


class StreamIngester:
    def __init__(
        self,
        options: StreamOptions,
        *,
        settings: Settings | None = None,
        backfill: Backfill | None = None,
    ) -> None:
        self.options = options
        self.settings = settings or get_settings()
        self.base_url = ws_base_url(options.market, self.settings)
        self.url = self.settings.loader_url()  # writes raw as klinehouse_loader
        self.stats = StreamStats()
        self._backfill = backfill
        self._series = {
            stream_name(s.upper(), i): (s.upper(), i)
            for s in options.symbols
            for i in options.intervals
        }
        self._subscribed = frozenset(self._series)
        self._committer = sink.Committer(self.url)
        self._batch = MicroBatcher(options.flush_rows, options.flush_seconds)
        self._spool = lake_spool.LakeSpool(options.lake_seconds)
        self._newest: dict[Series, int] = {}
        self._gaps: asyncio.Queue[tuple[Series, int, int]] = asyncio.Queue()
        self._current_gap: tuple[Series, int, int] | None = None
        self._connected: dict[int, bool] = {}
        self._last_message: float | None = None
        self._last_flush: datetime | None = None
        # Errors by kind (websocket, database, backfill, lake); a success of that kind
        # clears it, so `last_error` reports only what is still wrong.
        self._errors: dict[str, str] = {}
        self._database_ok: bool | None = None  # None until first asked
        self._stop = asyncio.Event()
        self._drained = asyncio.Event()  # set once the last database commit is done
        self._wake_flusher = asyncio.Event()
        self._started = time.monotonic()
        self.health_port: int | None = None

    # -- control -------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the ingester to flush and return (call from its event loop)."""
        self._stop.set()
        self._wake_flusher.set()

    def _set_error(self, kind: str, message: str) -> None:
        self._errors.pop(kind, None)
        self._errors[kind] = message  # the newest last

    def _clear_error(self, *kinds: str) -> None:
        for kind in kinds:
            self._errors.pop(kind, None)

    @property
    def last_error(self) -> str | None:
        """The newest error not yet followed by a success of its kind."""
        return next(reversed(self._errors.values()), None)

    def health(self) -> dict[str, Any]:
        now = time.monotonic()
        age = None if self._last_message is None else round(now - self._last_message, 3)
        connected = bool(self._connected) and all(self._connected.values())
        fresh = age is not None and age <= self.options.stale_after
        database = self._database_ok is not False
        return {
            "healthy": connected and fresh and database and not self._stop.is_set(),
            "connected": connected,
            "database": self._database_ok,
            "last_message_age_seconds": age,
            "last_flush_at": self._last_flush.isoformat() if self._last_flush else None,
            "last_error": self.last_error,
            "buffered": len(self._batch),
            "closed_candles": self.stats.closed,
            "committed": self.stats.committed,
            "backfilled": self.stats.backfilled,
            "malformed": sum(self.stats.skipped.values()),
            "malformed_by_reason": dict(self.stats.skipped),
            "connects": self.stats.connects,
            "uptime_seconds": round(now - self._started, 1),
        }

    # -- main ----------------------------------------------------------------------

    async def run(self) -> StreamStats:
        """Run until stop() or max_seconds; everything received is committed on return."""
        known = await asyncio.to_thread(
            sink.newest_open_times,
            self.url,
            market=self.options.market,
            series=list(self._series.values()),
        )
        self._newest = {k: _ms(v) for k, v in known.items()}
        self._database_ok = True
        runner = None
        if self.options.health_port is not None:
            from extract.stream.health import start_health_server

            runner, self.health_port = await start_health_server(
                self.health, host=self.options.health_host, port=self.options.health_port
            )
        groups = _connection_groups(self.base_url, list(self._series))
        readers = [asyncio.create_task(self._read(i, g)) for i, g in enumerate(groups)]
        flusher = asyncio.create_task(self._flusher())
        filler = asyncio.create_task(self._gap_filler())
        lake = asyncio.create_task(self._lake_writer()) if self.options.lake else None
        prober = asyncio.create_task(self._database_prober())
        stopped = asyncio.create_task(self._stop.wait())
        try:
            # A reader only returns by raising (a setting that can never work): stop then too.
            await asyncio.wait(
                {stopped, *readers},
                timeout=self.options.max_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            self.stop()
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            # Readers hand every frame to the batcher before their next await, so once they
            # are cancelled the batch holds all that was received: the flusher drains it.
            failures: list[BaseException] = []
            for step in (flusher, self._finish_gaps(filler), lake):
                if step is None:
                    continue
                if step is lake:
                    self._drained.set()
                try:
                    await step
                except KlinehouseError as exc:  # still close the rest; raised below
                    failures.append(exc)
            prober.cancel()
            await asyncio.gather(prober, return_exceptions=True)
            if runner is not None:
                await runner.cleanup()
            self._committer.close()
            stopped.cancel()
            if failures:
                raise failures[0]
        for task in readers:
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error
        return self.stats

    # -- websocket -----------------------------------------------------------------

    async def _read(self, index: int, streams: list[str]) -> None:
        url = combined_stream_url(self.base_url, streams)
        attempt = 0
        self._connected[index] = False
        while not self._stop.is_set():
            try:
                async with connect(url, open_timeout=10, ping_interval=20, ping_timeout=20) as ws:
                    self._connected[index] = True
                    self._clear_error("websocket")
                    self.stats.connects += 1
                    awaiting_first = {self._series[s] for s in streams}
                    log.info("connected: %d streams on %s", len(streams), self.base_url)
                    async for frame in ws:
                        # Backoff resets on data, not on connect: a server that accepts and
                        # drops at once is not hammered.
                        attempt = 0
                        self._on_frame(frame, awaiting_first)
                log.warning("websocket closed by the server; reconnecting")
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake) as exc:
                self._set_error("websocket", f"websocket: {type(exc).__name__}: {exc}")
                log.warning("websocket down (%s); reconnecting", self.last_error)
            except InvalidURI as exc:
                raise KlinehouseError(f"{self.base_url} is not a websocket URL: {exc}") from exc
            finally:
                self._connected[index] = False
            delay = min(self.options.reconnect_max, self.options.reconnect_initial * 2**attempt)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay * random.uniform(0.5, 1.0))

    def _on_frame(self, frame: str | bytes, awaiting_first: set[Series]) -> None:
        arrived = time.monotonic()
        self._last_message = arrived
        self.stats.frames += 1
        try:
            event = parse_frame(frame, self._subscribed)
        except MalformedMessage as exc:
            self.stats.skipped[exc.reason] += 1
            log.warning("skipped message (%d so far): %s", sum(self.stats.skipped.values()), exc)
            return
        if event.series in awaiting_first:
            awaiting_first.discard(event.series)
            self._open_gap(event)
        if not event.closed:
            self.stats.forming += 1
            return
        self.stats.closed += 1
        self._newest[event.series] = max(self._newest.get(event.series, -1), event.open_ms)
        self._batch.add(event, arrived)
        # The first candle arms the flusher's age timer; a full batch is due at once.
        if len(self._batch) == 1 or len(self._batch) >= self._batch.max_rows:
            self._wake_flusher.set()

    def _open_gap(self, event: KlineEvent) -> None:
        """Closed candles after the newest known one and before this live event are missing."""
        after = self._newest.get(event.series)
        if after is None or not self.options.backfill:
            return  # nothing stored yet: history is the batch extract's job, not the stream's
        length = klines.interval_length(event.interval)
        step = int(length.total_seconds() * 1000) if length is not None else 1
        if event.open_ms > after + step:
            self._gaps.put_nowait((event.series, after, event.open_ms))

    # -- database ------------------------------------------------------------------

    async def _flusher(self) -> None:
        failures = 0
        while True:
            wait = self._batch.seconds_until_due()
            if self._stop.is_set():
                if not len(self._batch):
                    return
            elif wait is None or wait > 0:
                self._wake_flusher.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake_flusher.wait(), wait)
                continue
            batch = self._batch.take()
            try:
                await self._commit([p.event for p in batch], source="stream", pending=batch)
                failures = 0
            except Exception as exc:  # the database may be away: keep the batch, retry
                self._batch.put_back(batch)
                self.stats.flush_errors += 1
                failures += 1
                self._database_ok = False
                self._set_error("database", f"flush: {type(exc).__name__}: {exc}")
                log.error("flush of %d candles failed (%s); retrying", len(batch), exc)
                if self._stop.is_set() and failures >= self.options.shutdown_attempts:
                    path, count = self._spill()
                    raise KlinehouseError(
                        f"could not commit {count} received candles on shutdown ({exc}); "
                        f"they are saved in {path} (kline schema: load with extract.load.load_frame)"
                    ) from exc
                await asyncio.sleep(min(10.0, 0.5 * 2**failures))

    def _spill(self) -> tuple[Path, int]:
        """Keep what could not be committed on shutdown: a parquet file under KLINEHOUSE_HOME."""
        df = to_frame([p.event for p in self._batch.take()], market=self.options.market)
        folder = paths.home() / "stream-spill"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}.parquet"
        df.write_parquet(path)
        return path, df.height

    async def _commit(
        self, events: list[KlineEvent], *, source: str, pending: list[Pending] | None = None
    ) -> None:
        def build_and_commit() -> tuple[pl.DataFrame, LoadStats]:
            # Building the frame off the event loop keeps frames flowing meanwhile.
            df = to_frame(events, market=self.options.market, source=source)
            return df, self._committer.commit(df)

        started = time.monotonic()
        df, stats = await asyncio.to_thread(build_and_commit)
        committed = time.monotonic()
        self.stats.commit_seconds.append(committed - started)
        self._count_commit(df, stats)
        if pending:
            self.stats.latencies.extend(committed - p.arrived for p in pending)

    async def _commit_frame(self, df: pl.DataFrame) -> None:
        self._count_commit(df, await asyncio.to_thread(self._committer.commit, df))

    async def probe_database(self) -> bool:
        """Ask the database (on the committer's connection): /healthz reflects the answer."""
        try:
            await asyncio.to_thread(self._committer.ping)
        except Exception as exc:
            self._database_ok = False
            self._set_error("database", f"database: {type(exc).__name__}: {exc}")
            return False
        self._database_ok = True
        self._clear_error("database")
        return True

    async def _database_prober(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.options.database_probe_seconds)
            if not self._stop.is_set():
                await self.probe_database()

    def _count_commit(self, df: pl.DataFrame, stats: LoadStats) -> None:
        self._database_ok = True
        self._clear_error("database")
        self.stats.flushes += 1
        self.stats.committed += df.height
        self.stats.inserted += stats.inserted
        self.stats.revised += stats.revised
        self.stats.unchanged += stats.unchanged
        self._last_flush = datetime.now(UTC)
        if self.options.lake:
            self._spool.add(df)

    # -- REST gap filling ----------------------------------------------------------

    async def _gap_filler(self) -> None:
        while True:
            series, after, before = self._current_gap = await self._gaps.get()
            attempt = 0
            while True:
                try:
                    await self._fill(series, after, before)
                    self._current_gap = None
                    self._clear_error("backfill")
                    self._gaps.task_done()
                    break
                except Exception as exc:  # REST or database away: retry with backoff
                    attempt += 1
                    self._set_error("backfill", f"backfill {series}: {type(exc).__name__}: {exc}")
                    log.error("backfill of %s failed (%s); retrying", series, exc)
                    await asyncio.sleep(min(30.0, 0.5 * 2**attempt))

    async def _fill(self, series: Series, after: int, before: int) -> None:
        if self._backfill is None:
            from extract.stream.backfill import RestBackfill

            self._backfill = RestBackfill(self.settings)
        symbol, interval = series
        df = await asyncio.to_thread(
            self._backfill, self.options.market, symbol, interval, after, before
        )
        if df.is_empty():
            return
        await self._commit_frame(df)
        self.stats.backfilled += df.height
        newest = _ms(df["open_time"].max())  # type: ignore[arg-type]
        self._newest[series] = max(self._newest.get(series, -1), newest)
        log.info("backfilled %d %s %s candles over REST", df.height, symbol, interval)

    async def _finish_gaps(self, filler: asyncio.Task[None]) -> None:
        """Give queued gaps a short grace on shutdown; name any left unfilled."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._gaps.join(), 15)
        filler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await filler
        left = [self._current_gap] if self._current_gap else []
        while not self._gaps.empty():
            left.append(self._gaps.get_nowait())
        for (symbol, interval), after, before in left:
            gap = f"{symbol} {interval} after {_iso(after)} before {_iso(before)}"
            self.stats.unfilled_gaps.append(gap)
            log.error("gap left unfilled on shutdown: %s", gap)

    # -- lake ----------------------------------------------------------------------

    async def _lake_writer(self) -> None:
        while True:
            stopping = self._drained.is_set()
            due = self._spool.take_due(everything=stopping)
            if not due.is_empty():
                try:
                    await asyncio.to_thread(lake_spool.write, due, self.settings)
                    self.stats.lake_rows += due.height
                    self._clear_error("lake")
                except Exception as exc:  # the lake may be away: keep the rows for later
                    self._spool.add(due)
                    self._set_error("lake", f"lake: {type(exc).__name__}: {exc}")
                    log.error("lake write of %d candles failed: %s", due.height, exc)
                    if stopping:
                        raise KlinehouseError(f"lake write failed on shutdown: {exc}") from exc
            if stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), min(5.0, self.options.lake_seconds))


def _ms(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(milliseconds=1)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()
