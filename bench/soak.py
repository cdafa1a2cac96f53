"""The soak of issue 14 item 4: StreamCandles subscribers and GetPrediction loops held open
while the ingester's commit path lands new closed candles at a steady rate.

`run_soak` drives a running service over real ports with grpc.aio clients, each on a
connection of its own (a local subchannel pool: 250 clients are 250 TCP connections, as
250 users would be). Subscriber k watches one series, `symbols[k % len(symbols)]`: the
subscribers spread over every series, so each commit wakes every one of them (the
hardest case for the service's pool: one read per subscriber per commit). Every
`tick` seconds one frame holding the next closed bar of every series is committed
through extract.stream.sink.Committer (upsert + NOTIFY in one transaction, as the
ingester flushes a minute's closes). At the end every subscriber's messages are
checked against what was committed for its series: each candle exactly once, in
order. bench/bench_scale.py runs it per warehouse size (`--soak`);
tests/inference/test_soak.py at a small size.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

STEPS = {"1m": timedelta(minutes=1), "5m": timedelta(minutes=5), "1h": timedelta(hours=1)}
# each client its own connection: channels of the same target otherwise share one subchannel
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


@dataclass
class SoakReport:
    subscribers: int
    loops: int
    seconds: float
    commits: int = 0
    candles_committed: int = 0
    expected: int = 0
    received: int = 0
    duplicates: int = 0
    missing: int = 0
    out_of_order: int = 0
    unexpected: int = 0  # candles of a series or time nobody committed in the soak
    errors: Counter[str] = field(default_factory=Counter)  # "RPC CODE" -> count
    error_details: dict[str, str] = field(default_factory=dict)  # "RPC CODE" -> the first's
    predict_ms: list[float] = field(default_factory=list)
    predict_seconds: float = 0.0
    subscribe_seconds: float = 0.0  # from opening the streams to every one subscribed
    message_ms: list[float] = field(default_factory=list)  # commit start -> candle received

    @property
    def clean(self) -> bool:
        return not (
            self.errors or self.duplicates or self.missing or self.out_of_order or self.unexpected
        ) and (self.received == self.expected)

    def figures(self) -> dict[str, float]:
        def q(values: list[float], k: int) -> float:
            if len(values) < 2:
                return values[0] if values else float("nan")
            return statistics.quantiles(values, n=100)[k - 1]

        return {
            "soak subscribers": self.subscribers,
            "soak GetPrediction loops": self.loops,
            "soak subscribe s": self.subscribe_seconds,
            "soak commits": self.commits,
            "soak candles committed": self.candles_committed,
            "soak messages expected": self.expected,
            "soak messages received": self.received,
            "soak duplicates": self.duplicates,
            "soak missing": self.missing,
            "soak out of order": self.out_of_order,
            "soak errors": sum(self.errors.values()),
            "soak GetPrediction p50 ms": q(self.predict_ms, 50),
            "soak GetPrediction p99 ms": q(self.predict_ms, 99),
            "soak GetPrediction req/s": len(self.predict_ms) / max(self.predict_seconds, 1e-9),
            "soak commit -> message p50 ms": q(self.message_ms, 50),
            "soak commit -> message p99 ms": q(self.message_ms, 99),
        }

    def error_line(self) -> str:
        if not self.errors:
            return "errors by code: none"
        return "errors by code: " + ", ".join(
            f"{k} x{v} (first: {self.error_details.get(k, '')!r})"
            for k, v in sorted(self.errors.items())
        )

    def error(self, key: str, details: str) -> None:
        self.errors[key] += 1
        self.error_details.setdefault(key, details[:300])


def _frame(symbols: list[str], interval: str, times: dict[str, datetime], k: int) -> Any:
    """The k-th soak bar of every series (valid OHLC near each series' price level)."""
    import polars as pl

    from extract.load import conform

    step = STEPS[interval]
    opens = [times[s] + step * k for s in symbols]
    price = [100.0 * (j + 1) * (1 + 0.0001 * (k % 7)) for j in range(len(symbols))]
    return conform(
        pl.DataFrame({
            "market": ["spot"] * len(symbols), "symbol": symbols,
            "interval": [interval] * len(symbols), "open_time": opens,
            "close_time": [t + step - timedelta(milliseconds=1) for t in opens],
            "open": price, "high": [p * 1.001 for p in price], "low": [p * 0.999 for p in price],
            "close": [p * 1.0002 for p in price], "volume": [12.5] * len(symbols),
            "quote_volume": [1.0] * len(symbols), "trades": [100] * len(symbols),
            "taker_buy_base_volume": [6.0] * len(symbols),
            "taker_buy_quote_volume": [1.0] * len(symbols), "source": ["stream"] * len(symbols),
        })
    )  # fmt: skip


async def run_soak(
    address: str,
    loader_url: str,
    symbols: list[str],
    *,
    interval: str = "1m",
    seconds: float = 60.0,
    subscribers: int = 200,
    loops: int = 50,
    tick: float = 1.0,
    drain_seconds: float = 15.0,
    deadline: float = 10.0,
) -> SoakReport:
    """Soak the service at `address` (see the module's docstring); the series `symbols`
    must exist in spot `interval` (their newest bars are read from the warehouse)."""
    import grpc

    from extract.stream.sink import Committer, newest_open_times
    from inference.convert import timestamp_from_us
    from klinehouse.v1 import candle_service_pb2 as cpb
    from klinehouse.v1 import candle_service_pb2_grpc, prediction_service_pb2_grpc
    from klinehouse.v1 import prediction_service_pb2 as ppb

    report = SoakReport(subscribers, loops, seconds)
    newest = {
        s: t
        for (s, _), t in newest_open_times(
            loader_url, market="spot", series=[(s, interval) for s in symbols]
        ).items()
    }
    assert set(newest) == set(symbols), sorted(set(symbols) - set(newest))
    step_us = int(STEPS[interval].total_seconds() * 1e6)
    base_us = {s: int(t.timestamp() * 1e6) for s, t in newest.items()}
    committed_at: dict[int, float] = {}  # soak bar number -> perf_counter at its commit start
    got: list[list[tuple[int, float]]] = [[] for _ in range(subscribers)]
    ready = [asyncio.Event() for _ in range(subscribers)]
    stopping = asyncio.Event()
    channels = [
        grpc.aio.insecure_channel(address, options=OWN_CONNECTION)
        for _ in range(subscribers + loops)
    ]

    async def subscriber(k: int) -> None:
        symbol = symbols[k % len(symbols)]
        request = cpb.StreamCandlesRequest(symbols=[symbol], interval=interval)
        # replaying from the newest bar: its message says the stream has subscribed
        request.replay_start_time.CopyFrom(timestamp_from_us(base_us[symbol]))
        call = candle_service_pb2_grpc.CandleServiceStub(channels[k]).StreamCandles(request)
        try:
            async for message in call:
                now = time.perf_counter()
                for c in message.candles:
                    us = c.open_time.ToMicroseconds()
                    if us == base_us[symbol] and not ready[k].is_set():
                        ready[k].set()
                        continue
                    if c.symbol != symbol or (us - base_us[symbol]) % step_us:
                        report.unexpected += 1
                        continue
                    got[k].append(((us - base_us[symbol]) // step_us, now))
            if not stopping.is_set():
                report.error("StreamCandles ended by the server", "")
        except grpc.aio.AioRpcError as exc:
            if not (stopping.is_set() and exc.code() == grpc.StatusCode.CANCELLED):
                report.error(
                    f"StreamCandles {exc.code().name}",
                    f"{exc.details()} after {len(got[k])} candles, subscribed {ready[k].is_set()},"
                    f" {time.perf_counter() - opened:.1f} s after the streams were opened",
                )
        except asyncio.CancelledError:
            call.cancel()
            raise
        finally:
            ready[k].set()  # a stream that failed before subscribing does not stall the soak

    async def predictor(j: int) -> None:
        call = prediction_service_pb2_grpc.PredictionServiceStub(
            channels[subscribers + j]
        ).GetPrediction
        request = ppb.GetPredictionRequest(symbol=symbols[j % len(symbols)], interval=interval)
        while not stopping.is_set():
            t0 = time.perf_counter()
            try:
                await call(request, timeout=deadline)
            except grpc.aio.AioRpcError as exc:
                report.error(f"GetPrediction {exc.code().name}", exc.details() or "")
                continue
            report.predict_ms.append((time.perf_counter() - t0) * 1e3)

    committer = Committer(loader_url)
    opened = time.perf_counter()
    streams = [asyncio.create_task(subscriber(k)) for k in range(subscribers)]
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), timeout=120)
        report.subscribe_seconds = time.perf_counter() - opened
        frames = [_frame(symbols, interval, newest, k) for k in range(1, int(seconds / tick) + 2)]
        loop_tasks = [asyncio.create_task(predictor(j)) for j in range(loops)]
        started = time.perf_counter()
        for k, frame in enumerate(frames, start=1):
            if time.perf_counter() - started >= seconds:
                break
            committed_at[k] = time.perf_counter()
            await asyncio.to_thread(committer.commit, frame)
            report.commits += 1
            report.candles_committed += frame.height
            await asyncio.sleep(max(0.0, started + k * tick - time.perf_counter()))
        stopping.set()
        await asyncio.gather(*loop_tasks)
        report.predict_seconds = time.perf_counter() - started
        wanted = report.commits
        drain_until = time.perf_counter() + drain_seconds
        while time.perf_counter() < drain_until and any(
            len(g) < wanted and not t.done() for g, t in zip(got, streams, strict=True)
        ):
            await asyncio.sleep(0.1)
    finally:
        stopping.set()
        for t in streams:
            t.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
        await asyncio.gather(*(ch.close() for ch in channels))
        committer.close()

    wanted_bars = set(range(1, report.commits + 1))
    for bars in got:
        numbers = [n for n, _ in bars if n in wanted_bars]
        report.unexpected += len(bars) - len(numbers)
        report.expected += report.commits
        report.received += len(numbers)
        report.duplicates += len(numbers) - len(set(numbers))
        report.missing += len(wanted_bars - set(numbers))
        report.out_of_order += sum(1 for a, b in itertools.pairwise(numbers) if b < a)
        report.message_ms += [(t - committed_at[n]) * 1e3 for n, t in bars if n in wanted_bars]
    return report
