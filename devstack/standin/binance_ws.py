"""A local stand-in for Binance's websocket kline streams, on 127.0.0.1.

It serves combined streams (`/stream?streams=btcusdt@kline_1m/ethusdt@kline_1m`,
frames wrapped as `{"stream": …, "data": …}`) and raw streams (`/ws/<stream>`),
filtered to what the client subscribed to, and refuses more than 1024 streams per
connection as Binance does.

What it plays is a *timeline*: a list of ticks, each a list of (stream, event)
pairs. Two sources:

- `recorded_timeline()`: the real events recorded from the live spot stream
  (`binance/api/ws_kline_events_1m.jsonl`), one per tick;
- `generated_timeline()`: for candles you give (e.g. the real archive rows),
  `updates` forming events (`"x": false`, partial values) per candle, then the
  closing event (`"x": true`) carrying the exact candle.

The clock of the timeline is global: when the stand-in drops a connection
(`drops={tick: ticks_missed}`), the ticks "happen" while the client is away,
as on the real exchange, and a reconnecting client resumes after them. Once the
timeline is played, connections stay open and idle, like a quiet live stream.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from klinehouse import klines

log = logging.getLogger(__name__)

MAX_STREAMS_PER_CONNECTION = 1024
INTERVAL_MS = {
    name: int(length.total_seconds() * 1000)
    for name, length in klines.INTERVALS.items()
    if length is not None
}

Tick = list[tuple[str, dict[str, Any]]]
GARBAGE_PER_TICK = 2  # see _garbage


@dataclass(frozen=True)
class WireCandle:
    """One closed candle as Binance sends it: integer ms times, decimal strings."""

    symbol: str
    interval: str
    open_ms: int
    close_ms: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trades: int
    taker_buy_base_volume: str
    taker_buy_quote_volume: str

    @property
    def stream(self) -> str:
        return f"{self.symbol.lower()}@kline_{self.interval}"


def archive_candles(path: Path, *, symbol: str, interval: str) -> list[WireCandle]:
    """Rows of a data.binance.vision kline CSV (µs times become ms, as the websocket sends)."""
    out: list[WireCandle] = []
    with path.open(newline="") as fh:
        for row in csv.reader(fh):
            if not row or not row[0].strip().isdigit():
                continue  # a header row
            scale = 1000 if len(row[0].strip()) == 16 else 1
            out.append(
                WireCandle(
                    symbol,
                    interval,
                    int(row[0]) // scale,
                    int(row[6]) // scale,
                    row[1],
                    row[2],
                    row[3],
                    row[4],
                    row[5],
                    row[7],
                    int(row[8]),
                    row[9],
                    row[10],
                )
            )
    return out


def synthetic_candles(
    symbols: Sequence[str], *, interval: str, start_ms: int, count: int, seed: int = 7
) -> dict[str, list[WireCandle]]:
    """A seeded random walk per symbol (for load: many symbols, no real data needed)."""
    rng = random.Random(seed)
    step = INTERVAL_MS[interval]
    q = Decimal("0.00000001")
    out: dict[str, list[WireCandle]] = {}
    for symbol in symbols:
        price = Decimal(rng.randint(1, 50_000))
        series = []
        for i in range(count):
            o = price
            c = (o * Decimal(1 + rng.uniform(-0.004, 0.004))).quantize(q)
            h = (max(o, c) * Decimal(1 + rng.uniform(0, 0.002))).quantize(q)
            lo = (min(o, c) * Decimal(1 - rng.uniform(0, 0.002))).quantize(q)
            v = Decimal(rng.uniform(1, 500)).quantize(q)
            open_ms = start_ms + i * step
            series.append(
                WireCandle(
                    symbol,
                    interval,
                    open_ms,
                    open_ms + step - 1,
                    str(o),
                    str(h),
                    str(lo),
                    str(c),
                    str(v),
                    str((v * c).quantize(q)),
                    rng.randint(1, 5000),
                    str((v / 2).quantize(q)),
                    str((v * c / 2).quantize(q)),
                )
            )
            price = c
        out[symbol] = series
    return out


def kline_event(
    candle: WireCandle, *, closed: bool, fraction: Decimal = Decimal(1)
) -> dict[str, Any]:
    """The `data` of a kline event; a forming one carries `fraction` of the volumes."""
    q = Decimal("0.00000001")

    def part(value: str) -> str:
        return value if closed else str((Decimal(value) * fraction).quantize(q))

    close = candle.close if closed else candle.open if fraction < Decimal("0.5") else candle.high
    return {
        "e": "kline",
        # Binance sends the close ~1.4 s after the candle's end (see the recording).
        "E": candle.close_ms + 1400 if closed else candle.open_ms + 1,
        "s": candle.symbol,
        "k": {
            "t": candle.open_ms,
            "T": candle.close_ms,
            "s": candle.symbol,
            "i": candle.interval,
            "f": 100,
            "L": 100 + candle.trades,
            "o": candle.open,
            "c": close,
            "h": candle.high if closed else max(candle.open, close, key=Decimal),
            "l": candle.low if closed else min(candle.open, close, key=Decimal),
            "v": part(candle.volume),
            "n": candle.trades if closed else max(1, int(candle.trades * fraction)),
            "x": closed,
            "q": part(candle.quote_volume),
            "V": part(candle.taker_buy_base_volume),
            "Q": part(candle.taker_buy_quote_volume),
            "B": "0",
        },
    }


def generated_timeline(series: Iterable[Sequence[WireCandle]], *, updates: int = 2) -> list[Tick]:
    """One tick per candle period: `updates` forming events per series, then the closes.

    Series are aligned by position (the i-th candle of each series shares tick i).
    """
    columns = list(series)
    length = max((len(s) for s in columns), default=0)
    ticks: list[Tick] = []
    for i in range(length):
        tick: Tick = []
        for u in range(updates):
            fraction = Decimal(u + 1) / Decimal(updates + 1)
            tick.extend(
                (s[i].stream, kline_event(s[i], closed=False, fraction=fraction))
                for s in columns
                if i < len(s)
            )
        tick.extend((s[i].stream, kline_event(s[i], closed=True)) for s in columns if i < len(s))
        ticks.append(tick)
    return ticks


def recorded_timeline(path: Path) -> list[Tick]:
    """The recorded combined-stream events, one per tick, in arrival order."""
    ticks: list[Tick] = []
    for line in path.read_text().splitlines():
        if line.strip():
            frame = json.loads(line)
            ticks.append([(frame["stream"], frame["data"])])
    return ticks


@dataclass
class Scenario:
    """What the stand-in plays and how it misbehaves.

    drops: {tick: ticks_missed} — midway through that tick the connection is cut
      and `ticks_missed` further ticks pass before a reconnecting client is served.
    garbage: ticks before which GARBAGE_PER_TICK malformed frames are sent.
    pace: seconds between ticks (0: as fast as the client reads).
    """

    ticks: list[Tick]
    drops: dict[int, int] = field(default_factory=dict)
    garbage: set[int] = field(default_factory=set)
    pace: float = 0.0


class WsStandin:
    """The server; `cursor` is the global clock (index of the next tick to play)."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.cursor = 0
        self.connections = 0
        self.frames_sent = 0
        self.finished = asyncio.Event()
        self._dropped: set[int] = set()
        self._server: Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._server = await serve(
            self._handle, host, port, process_request=self._check_request, compression=None
        )
        sock = next(iter(self._server.sockets))
        return f"ws://{host}:{sock.getsockname()[1]}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        try:
            _streams(request.path)
        except ValueError as exc:
            body = json.dumps({"code": -1121, "msg": str(exc)}).encode()
            return Response(
                400, "Bad Request", Headers([("Content-Type", "application/json")]), body
            )
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        streams, combined = _streams(ws.request.path)
        self.connections += 1
        log.info("connection %d: %d streams", self.connections, len(streams))
        ticks = self.scenario.ticks
        try:
            while self.cursor < len(ticks):
                index = self.cursor
                frames = [
                    json.dumps({"stream": s, "data": d} if combined else d)
                    for s, d in ticks[index]
                    if s in streams
                ]
                if index in self.scenario.garbage:
                    frames = [*_garbage(frames), *frames]
                drop = index in self.scenario.drops and index not in self._dropped
                if drop:
                    frames = frames[: len(frames) // 2]
                for frame in frames:
                    await ws.send(frame)
                    self.frames_sent += 1
                if drop:
                    self._dropped.add(index)
                    self.cursor = index + 1 + self.scenario.drops[index]
                    log.info("dropping connection at tick %d, resuming at %d", index, self.cursor)
                    ws.transport.abort()  # a network cut, not a polite close
                    return
                self.cursor = index + 1
                await asyncio.sleep(self.scenario.pace)
            self.finished.set()
            await ws.wait_closed()
        except ConnectionClosed:
            pass


def _garbage(frames: list[str]) -> list[str]:
    """A non-JSON frame, then the tick's last event (a close, in generated timelines) with
    a price Binance would never send."""
    out = ["not json {"]
    if frames:
        broken = json.loads(frames[-1])
        kline = broken["data"]["k"] if "data" in broken else broken["k"]
        kline["c"] = "1,5"
        out.append(json.dumps(broken))
    return out


def _streams(path: str) -> tuple[set[str], bool]:
    """The subscribed stream names of a request path, and whether it is a combined stream."""
    parts = urlsplit(path)
    if parts.path.rstrip("/") == "/stream":
        names = [n for n in parse_qs(parts.query).get("streams", [""])[0].split("/") if n]
        combined = True
    elif parts.path.startswith("/ws/"):
        names = [n for n in parts.path[len("/ws/") :].split("/") if n]
        combined = False
    else:
        raise ValueError(f"unknown path {parts.path!r}: use /stream?streams=… or /ws/<stream>")
    if not names:
        raise ValueError("no stream names given")
    if len(names) > MAX_STREAMS_PER_CONNECTION:
        raise ValueError(
            f"{len(names)} streams requested: at most {MAX_STREAMS_PER_CONNECTION} per connection"
        )
    return set(names), combined


class StandinThread:
    """The stand-in on its own event loop in a daemon thread (tests, benchmarks)."""

    def __init__(self, scenario: Scenario) -> None:
        self.server = WsStandin(scenario)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="binance-ws-standin", daemon=True)
        self.url = ""

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self.url = self._loop.run_until_complete(self.server.start())
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> StandinThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("websocket stand-in did not start within 10 s")
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def wait_finished(self, timeout: float) -> bool:
        """True once the whole timeline was played."""
        future = asyncio.run_coroutine_threadsafe(
            asyncio.wait_for(self.server.finished.wait(), timeout), self._loop
        )
        try:
            future.result(timeout + 1)
            return True
        except TimeoutError:
            return False


def main(argv: list[str] | None = None) -> None:
    """`python -m devstack.standin.binance_ws`: serve a recorded or synthetic timeline."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--replay", type=Path, help="a combined-stream .jsonl recording")
    parser.add_argument("--symbols", type=int, default=0, help="synthetic series count")
    parser.add_argument("--interval", default="1m")
    parser.add_argument("--candles", type=int, default=60)
    parser.add_argument("--start-ms", type=int, default=1_704_067_200_000)
    parser.add_argument("--pace", type=float, default=0.0, help="seconds between ticks")
    parser.add_argument("--updates", type=int, default=2, help="forming updates per candle")
    args = parser.parse_args(argv)
    if args.replay:
        ticks = recorded_timeline(args.replay)
    else:
        names = [f"SYM{i:04d}USDT" for i in range(args.symbols or 1)]
        series = synthetic_candles(
            names, interval=args.interval, start_ms=args.start_ms, count=args.candles
        )
        ticks = generated_timeline(series.values(), updates=args.updates)

    async def serve_forever() -> None:
        server = WsStandin(Scenario(ticks, pace=args.pace))
        print(await server.start(port=args.port), flush=True)
        await asyncio.Future()

    logging.basicConfig(level=logging.INFO)
    asyncio.run(serve_forever())


if __name__ == "__main__":
    main()
