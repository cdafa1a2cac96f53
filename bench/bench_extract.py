"""Benchmark of REST extraction: weight budget used at Binance's real limit, against a bare client.

    .venv/bin/python bench/bench_extract.py [--market spot] [--seconds 70] [--latency 0.05]

Starts its own private stack (PostgreSQL + moto S3 in a temporary KLINEHOUSE_HOME)
and the Binance stand-in as a separate process with `--latency` seconds added to
every request. Two phases over synthetic 1m candles:

1. baseline: a bare client (threads of `requests` + `json`, no pacing, no retries)
   fetching full pages with the stand-in's weight limit lifted: what the machine
   can move, in candles/s;
2. ours: `klinehouse extract --dry-run` (python-binance client, pacing, retries,
   preprocessing into the kline schema; nothing written) at the real weight limit
   (6,000/min spot, 2,400/min futures), sized to last about `--seconds`, started
   at a minute boundary (Binance counts weight per calendar minute).

Prints candles/s of both, the weight used as a fraction of the budget over the
run (goal >= 0.9), and the 429s the stand-in served (goal 0).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from klinehouse.klines import MARKETS  # noqa: E402 (after the path insert)

KLINES_PATH = {"spot": "/api/v3/klines", "usdm": "/fapi/v1/klines", "coinm": "/dapi/v1/klines"}


@contextmanager
def standin(latency: float) -> Iterator[str]:
    """The stand-in in its own process (its CPU is Binance's, not ours), synthetic data only."""
    env = {**os.environ, "KLINEHOUSE_SHARED_DATA": "/nonexistent"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack.standin.binance_rest", "--latency", str(latency)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().split("=", 1)[-1]
        for _ in range(3):
            proc.stdout.readline()
        if not url.startswith("http://"):
            raise RuntimeError(f"stand-in did not start: {url!r}")
        for key in ("REST", "FUTURES_REST", "COINM_REST", "ARCHIVE"):
            os.environ[f"KLINEHOUSE_BINANCE_{key}_URL"] = url
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _stats(url: str) -> dict:  # type: ignore[type-arg]
    return dict(requests.get(f"{url}/_standin/stats", timeout=10).json())


def bare_baseline(url: str, market: str, symbols: list[str], pages: int, workers: int) -> float:
    """Candles/s of a bare threaded client fetching full pages, no pacing."""
    from extract.pacing import MAX_KLINES_PER_CALL

    limit = MAX_KLINES_PER_CALL[market] if market == "spot" else 1000
    start = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1000)
    jobs = [
        (symbols[i % len(symbols)], start + (i // len(symbols)) * limit * 60_000)
        for i in range(pages)
    ]
    lock = threading.Lock()
    candles = 0

    def work() -> None:
        nonlocal candles
        session = requests.Session()
        while True:
            with lock:
                if not jobs:
                    return
                symbol, t = jobs.pop()
            params: dict[str, str | int] = {
                "symbol": symbol,
                "interval": "1m",
                "startTime": t,
                "limit": limit,
            }
            response = session.get(f"{url}{KLINES_PATH[market]}", params=params, timeout=30)
            response.raise_for_status()
            rows = response.json()
            with lock:
                candles += len(rows)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return candles / (time.perf_counter() - t0)


def main() -> None:
    from devstack.stack.private import private_stack

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--market", choices=MARKETS, default="spot")
    parser.add_argument("--seconds", type=float, default=70.0)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--symbols", type=int, default=5)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--baseline-pages", type=int, default=200)
    args = parser.parse_args()

    with private_stack("bench-extract-"), standin(args.latency) as url:
        from extract.extractor import Extractor, ExtractRequest
        from extract.pacing import PUBLISHED_LIMITS, best_page_size, kline_weight
        from extract.rest import RestSource
        from klinehouse.settings import get_settings

        get_settings(fresh=True)
        market = args.market
        limit = PUBLISHED_LIMITS[market]
        names = {"spot": "BTCUSDT ETHUSDT BNBUSDT SOLUSDT XRPUSDT", "usdm": "BTCUSDT ETHUSDT BNBUSDT",
                 "coinm": "BTCUSD_PERP ETHUSD_PERP"}[market].split()  # fmt: skip
        symbols = (names * args.symbols)[: args.symbols] if args.symbols <= len(names) else names
        extra = [f"SYN{i:03d}USDT" for i in range(args.symbols - len(symbols))]
        if extra:
            requests.post(
                f"{url}/_standin/config", json={"extra_symbols": {market: extra}}, timeout=10
            )
        symbols = symbols + extra

        requests.post(f"{url}/_standin/config", json={"weight_limits": {market: 10**9}}, timeout=10)
        baseline = bare_baseline(url, market, symbols, args.baseline_pages, args.workers)
        requests.post(f"{url}/_standin/config", json={"weight_limits": {market: limit}}, timeout=10)

        page = best_page_size(market)
        rate = limit * 0.96 / 60 / kline_weight(market, page) * page  # candles/s the pacer allows
        per_symbol = int(rate * args.seconds / len(symbols))
        start = datetime(2021, 1, 1, tzinfo=UTC)
        end = start + timedelta(minutes=per_symbol)  # exclusive
        request = ExtractRequest(
            market, symbols, ["1m"], start=start, end=end, source="rest", load=False, dry_run=True
        )
        time.sleep(60 - time.time() % 60 + 0.2)  # a clean weight window
        before = _stats(url)
        rest = RestSource(market)
        t0 = time.perf_counter()
        summary = Extractor(request, rest=rest, workers=args.workers).run()
        elapsed = time.perf_counter() - t0
        after = _stats(url)
        weight = after["weight"].get(market, 0) - before["weight"].get(market, 0)
        served_429 = after["status_counts"].get("429", 0) - before["status_counts"].get("429", 0)
        assert not summary.failures, summary.failures
        ours = summary.fetched / elapsed
        ceiling = limit / 60 / kline_weight(market, page) * page
        print(
            f"market {market}, {len(symbols)} symbols x {per_symbol:,} 1m candles, latency {args.latency * 1000:.0f} ms, {args.workers} workers"
        )
        print(f"bare client, no limit         : {baseline:>10,.0f} candles/s")
        print(
            f"ours at the real weight limit : {ours:>10,.0f} candles/s  ({summary.fetched:,} in {elapsed:.1f}s, {summary.requests} requests)"
        )
        print(
            f"ceiling of the limit          : {ceiling:>10,.0f} candles/s  ({limit}/min, page {page} = weight {kline_weight(market, page)})"
        )
        print(f"ratio ours / bare             : {ours / baseline:>10.2f}")
        print(
            f"weight budget used            : {weight / (limit * elapsed / 60):>10.2f}   (goal >= 0.9)"
        )
        print(f"429s served / seen            : {served_429:>7} / {summary.throttled}   (goal 0)")
        print(f"pacer waits for the minute    : {rest.pacer.paused_seconds:>10.1f}s")


if __name__ == "__main__":
    main()
