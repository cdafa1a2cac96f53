"""Benchmark of the stream ingester: socket -> committed rows, against a bare websocket reader.

    .venv/bin/python bench/bench_stream.py [--symbols 200] [--seconds 60] [--tick-ms 500]

Starts its own private stack (PostgreSQL + moto S3 in a temporary KLINEHOUSE_HOME)
and the websocket stand-in as a separate process, serving `--symbols` synthetic
1m series with 2 forming updates per candle. Three phases:

1. baseline: a bare `websockets` client receiving and `json.loads`-ing every frame
   and picking out the closed candles, as fast as the stand-in sends
   (`--burst-candles` candles per series);
2. ours, same timeline: `StreamIngester` from the socket to rows committed in
   raw.binance_klines (upsert + NOTIFY; the lake copy off), closed candles/s,
   and the ratio to the baseline;
3. paced: one candle period per `--tick-ms` for `--seconds`, the lake copy on;
   latency from the arrival of each closing frame to its commit (p50, p99) and
   the RSS of this process (the ingester; the stand-in runs elsewhere) over time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def standin(symbols: int, candles: int, pace: float) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack.standin.binance_ws", "--symbols", str(symbols),
         "--candles", str(candles), "--pace", str(pace), "--updates", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("ws://"):
            raise RuntimeError(f"websocket stand-in did not start: {url!r}")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _symbols(n: int) -> tuple[str, ...]:
    return tuple(f"SYM{i:04d}USDT" for i in range(n))


async def bare_baseline(url: str, symbols: int, expected: int) -> float:
    """Closed candles/s of a bare client: receive, json.loads, keep the x=true ones."""
    from websockets.asyncio.client import connect

    from extract.stream.messages import combined_stream_url, stream_name

    streams = [stream_name(s, "1m") for s in _symbols(symbols)]
    closed = 0
    async with connect(combined_stream_url(url, streams), max_size=None) as ws:
        started = None
        async for frame in ws:
            started = started or time.perf_counter()
            if json.loads(frame)["data"]["k"]["x"]:
                closed += 1
                if closed == expected:
                    break
    assert started is not None
    return closed / (time.perf_counter() - started)


async def run_ours(
    url: str,
    symbols: int,
    expected: int | None,
    seconds: float | None,
    lake: bool,
    flush_rows: int = 500,
) -> tuple[float, dict[str, object]]:
    """Run the ingester until `expected` rows are committed (or for `seconds`)."""
    from extract.stream.ingester import StreamIngester, StreamOptions
    from klinehouse.settings import get_settings

    os.environ["KLINEHOUSE_BINANCE_WS_URL"] = url
    options = StreamOptions(
        market="spot",
        symbols=_symbols(symbols),
        intervals=("1m",),
        lake=lake,
        backfill=False,
        flush_rows=flush_rows,
    )
    ingester = StreamIngester(options, settings=get_settings(fresh=True))
    task = asyncio.create_task(ingester.run())
    rss: list[float] = []
    first_frame = None
    t0 = time.perf_counter()
    while True:
        await asyncio.sleep(0.05 if expected else 1.0)
        if first_frame is None and ingester.stats.frames:
            first_frame = time.perf_counter()
        if not expected:
            rss.append(_rss_mib())
        if expected and ingester.stats.committed >= expected:
            break
        if seconds and time.perf_counter() - t0 >= seconds:
            break
    elapsed = time.perf_counter() - (first_frame or t0)
    ingester.stop()
    stats = await task
    result: dict[str, object] = {
        "closed": stats.closed,
        "committed": stats.committed,
        "flushes": stats.flushes,
        "latency": stats.latency_quantiles(),
        "commit_p50": statistics.median(stats.commit_seconds) if stats.commit_seconds else None,
        "rows_per_flush": stats.committed / max(1, stats.flushes),
        "rss": rss,
        "lake_rows": stats.lake_rows,
    }
    return stats.committed / elapsed, result


def main() -> None:
    from devstack.stack.private import private_stack

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument(
        "--burst-candles", type=int, default=30, help="candles per series, phases 1-2"
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the paced phase")
    parser.add_argument(
        "--tick-ms", type=float, default=500.0, help="real ms per 1m candle, phase 3"
    )
    parser.add_argument("--flush-rows", type=int, default=500, help="the ingester's --flush-rows")
    args = parser.parse_args()
    burst = args.symbols * args.burst_candles

    with private_stack("bench-stream-"):
        print(f"stream bench: {args.symbols} symbols x 1m, 2 forming updates per candle")
        with standin(args.symbols, args.burst_candles, 0.0) as url:
            bare = asyncio.run(bare_baseline(url, args.symbols, burst))
        with standin(args.symbols, args.burst_candles, 0.0) as url:
            ours, burst_result = asyncio.run(
                run_ours(url, args.symbols, burst, None, lake=False, flush_rows=args.flush_rows)
            )
        print(f"  baseline (bare websocket receive + json parse): {bare:10,.0f} closed candles/s")
        print(f"  ours (socket -> committed rows, upsert+NOTIFY): {ours:10,.0f} closed candles/s")
        print(f"  ratio ours/baseline: {ours / bare:.3f}  ({burst:,} candles each)")
        print(
            f"  ours: {burst_result['rows_per_flush']:.0f} rows per commit, "
            f"commit (frame + upsert + NOTIFY) p50 {burst_result['commit_p50'] * 1000:.0f} ms"  # type: ignore[operator]
        )

        ticks = int(args.seconds * 1000 / args.tick_ms) + 10
        with standin(args.symbols, ticks, args.tick_ms / 1000) as url:
            _, result = asyncio.run(
                run_ours(
                    url, args.symbols, None, args.seconds, lake=True, flush_rows=args.flush_rows
                )
            )
        latency = result["latency"]
        rss = result["rss"]
        assert isinstance(latency, dict) and isinstance(rss, list) and rss
        third = max(1, len(rss) // 3)
        print(
            f"  paced {args.seconds:.0f}s at one candle per {args.tick_ms:.0f} ms per symbol "
            f"({args.symbols * 1000 / args.tick_ms:,.0f} closes/s offered): "
            f"committed {result['committed']:,} in {result['flushes']} flushes, lake {result['lake_rows']:,} rows"
        )
        print(
            f"  latency closing frame arrival -> commit: p50 {latency['p50'] * 1000:.0f} ms, "
            f"p99 {latency['p99'] * 1000:.0f} ms"
        )
        print(
            f"  RSS MiB: start {rss[0]:.0f}, median first third {statistics.median(rss[:third]):.0f}, "
            f"median last third {statistics.median(rss[-third:]):.0f}, max {max(rss):.0f}"
        )
        step = max(1, len(rss) // 10)
        print("  RSS MiB by tenth of the run: " + " ".join(f"{v:.0f}" for v in rss[::step]))


if __name__ == "__main__":
    main()
