"""Benchmark of the gRPC service against a bare grpc.aio server, in one run.

    .venv/bin/python bench/bench_grpc.py [--seconds 10] [--concurrency 8]
        [--stream-candles 1000000] [--bare-candles 200000]

Starts its own private stack (PostgreSQL + moto S3 in a temporary KLINEHOUSE_HOME),
fills raw.binance_klines and the series catalogue (1 symbol of 1m bars,
`--stream-candles` rows, plus 20 series of `--bars-1h` 1h bars: a warehouse of
2,000,000 rows by default; the service reads raw by key, so no dbt model is run
here: this measures the service, not the transform), registers a
CatBoost champion through training.registry, and starts two servers as separate
processes: `klinehouse serve` and a bare grpc.aio echo server. One client process
(grpc.aio, `--concurrency` calls in flight, raw bytes on both sides so neither pays
client-side protobuf parsing) measures:

1. unary: echo with GetPrediction-sized messages vs GetPrediction; echo with
   GetCandles-sized messages vs GetCandles (one day of 1h candles):
   requests/s, p50 and p99 latency, and the ratios; then the latency of echo and
   GetPrediction with one call in flight (p99 without client-side queueing);
2. streams: StreamCandles replaying `--stream-candles` candles (batched messages)
   vs a bare stream of one ~candle-sized message per candle (`--bare-candles`
   messages; it runs at ~10k messages/s, so 1,000,000 takes minutes): candles/s
   and the ratio;
3. live: `--live-candles` new 1h candles committed one by one through the ingester's
   Committer (upsert + NOTIFY), each timed from the commit's start to its
   StreamCandles and its StreamPredictions message (p50, p99).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ECHO_SERVICE = "bench.Echo"
FIRST_1M = datetime(2022, 1, 1, tzinfo=UTC)
DAY_1H = datetime(2024, 3, 1, tzinfo=UTC)


# --- the bare baseline: a grpc.aio server that answers bytes of a requested size ----------


def run_echo_server(port: int) -> None:
    import grpc

    cache: dict[int, bytes] = {}

    def payload(size: int) -> bytes:
        if size not in cache:
            cache[size] = b"x" * size
        return cache[size]

    async def unary(request: bytes, context: object) -> bytes:
        return payload(int(request[:8]))

    async def stream(request: bytes, context: object):  # type: ignore[no-untyped-def]
        count, size = int(request[:12]), int(request[12:20])
        body = payload(size)
        for _ in range(count):
            yield body

    async def main() -> None:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    ECHO_SERVICE,
                    {
                        "Unary": grpc.unary_unary_rpc_method_handler(unary),
                        "Stream": grpc.unary_stream_rpc_method_handler(stream),
                    },
                ),
            )
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(main())


# --- setup -----------------------------------------------------------------------------


SYMBOLS_1H = [f"S{k:03d}USDT" for k in range(19)] + ["BTCUSDT"]


def fill_raw(url: str, stream_candles: int, bars_1h: int) -> int:
    """raw.binance_klines and the series catalogue: 1 symbol of 1m bars
    (`stream_candles` rows) and 20 series of `bars_1h` 1h bars ending a fortnight
    after DAY_1H (the service reads raw by key; no dbt model is run here)."""
    import psycopg

    insert = """
        INSERT INTO raw.binance_klines
        SELECT 'spot', %(symbol)s, %(interval)s, t, t + %(step)s::interval - interval '1 ms',
               p, p + 12.5, p - 11.25, p + 0.12345678, 3.14159265 + i %% 100,
               123456.78901234 + i, 1000 + i %% 500, 1.5 + i %% 7, 60000.12345678, 'archive'
        FROM generate_series(0, %(n)s - 1) AS i,
             LATERAL (SELECT %(first)s::timestamptz + i * %(step)s::interval,
                             40000.00000000 + (i %% 5000)::numeric / 100
                             + 30 * sin(i / 7.0)::numeric(20, 8)) AS g(t, p)
    """
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            insert,
            {"symbol": "BTCUSDT", "interval": "1m", "step": "1 minute", "n": stream_candles,
             "first": FIRST_1M},
        )  # fmt: skip
        first_1h = DAY_1H + timedelta(days=15) - timedelta(hours=bars_1h)
        for symbol in SYMBOLS_1H:
            conn.execute(
                insert,
                {"symbol": symbol, "interval": "1h", "step": "1 hour", "n": bars_1h,
                 "first": first_1h},
            )  # fmt: skip
        conn.execute(
            "INSERT INTO serving.series (market, interval, symbol, first_open_time, last_open_time)"
            " SELECT market, interval, symbol, min(open_time), max(open_time)"
            " FROM raw.binance_klines GROUP BY 1, 2, 3 ON CONFLICT DO NOTHING"
        )
        conn.execute("ANALYZE")
        row = conn.execute("SELECT count(*) FROM raw.binance_klines").fetchone()
    return int(row[0]) if row else 0


def register_champion(url: str, iterations: int, interval: str = "1h") -> str:
    from klinehouse.features import FEATURES
    from training import registry
    from training.candidates import CANDIDATES, REFERENCE
    from training.models import ModelConfig, fit_classifier, fit_regressor
    from training.synthetic import frame

    rows = frame(bars=2000, signal=0.5)
    config = ModelConfig(iterations=iterations)
    classifier, regressor = fit_classifier(rows, None, config), fit_regressor(rows, None, config)
    version = "bench-champion"
    uri = registry.store_artifacts(version, classifier, regressor, {"version": version})
    metrics = {
        "classifier": {"log_loss": 0.6},
        "majority": {"log_loss": 0.6931},
        "momentum": {"log_loss": 0.7},
        "backtest": {
            "model": {"net_return": 0.1, "sharpe": 1.0},
            "buy_and_hold": {"net_return": 0.0, "sharpe": 0.0},
            "momentum": {"net_return": 0.0},
        },
        # the risk conditions of training.promotion pass
        "guards": {"bootstrap": {"lower": 0.01}, "deflated_sharpe": {"probability": 0.99}},
    }
    reference = CANDIDATES[REFERENCE]  # the CatBoost pair fitted above
    outcome = registry.record(
        registry.ModelRecord.model_validate({
            "version": version, "market": "spot", "interval": interval, "symbols": ["BTCUSDT"],
            "features": list(FEATURES), "train_start": FIRST_1M, "train_end": DAY_1H,
            "buy_threshold": 0.55, "sell_threshold": 0.45, "allow_short": False, "fee_rate": 0.001,
            "seed": 42, "code_version": "bench", "data_fingerprint": {}, "metrics": metrics,
            "artifact_uri": uri, "candidate": reference.name,
            "horizon_bars": reference.horizon, "target": reference.target(),
        }),
        url=url,
    )  # fmt: skip
    assert outcome.status == "champion", outcome.reason
    return version


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(address: str, method: str, request: bytes, proc: subprocess.Popen[bytes]) -> None:
    import grpc

    deadline = time.monotonic() + 90
    with grpc.insecure_channel(address) as ch:
        call = ch.unary_unary(method)
        while True:
            try:
                call(request, timeout=5)
                return
            except grpc.RpcError as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server at {address} not ready: {exc}") from exc
                time.sleep(0.5)


# --- measurement -----------------------------------------------------------------------


async def load(
    address: str, method: str, request: bytes, seconds: float, concurrency: int
) -> dict[str, float]:
    import grpc

    latencies: list[float] = []
    async with grpc.aio.insecure_channel(address) as ch:
        call = ch.unary_unary(method)
        for _ in range(50):  # warm-up
            await call(request, timeout=10)
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                await call(request, timeout=10)
                latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100)
    return {
        "rps": len(latencies) / elapsed,
        "p50": q[49] * 1e3,
        "p99": q[98] * 1e3,
        "n": len(latencies),
    }


async def bare_stream(address: str, count: int, size: int) -> float:
    import grpc

    async with grpc.aio.insecure_channel(address) as ch:
        call = ch.unary_stream(f"/{ECHO_SERVICE}/Stream")
        t0 = time.perf_counter()
        received = 0
        async for _ in call(b"%012d%08d" % (count, size)):
            received += 1
        elapsed = time.perf_counter() - t0
    assert received == count
    return count / elapsed


async def our_stream(address: str, count: int) -> tuple[float, int]:
    import grpc

    from klinehouse.v1 import candle_service_pb2, candle_service_pb2_grpc

    request = candle_service_pb2.StreamCandlesRequest(symbols=["BTCUSDT"], interval="1m")
    request.replay_start_time.FromDatetime(FIRST_1M)
    async with grpc.aio.insecure_channel(
        address, options=[("grpc.max_receive_message_length", 64 << 20)]
    ) as ch:
        stub = candle_service_pb2_grpc.CandleServiceStub(ch)
        t0 = time.perf_counter()
        received, messages = 0, 0
        call = stub.StreamCandles(request)
        async for message in call:
            received += len(message.candles)
            messages += 1
            if received >= count:
                break
        elapsed = time.perf_counter() - t0
        call.cancel()
    assert received == count, received
    return count / elapsed, messages


async def live_latency(
    address: str,
    loader_url: str,
    count: int,
    *,
    symbol: str = "BTCUSDT",
    interval: str = "1h",
    newest: datetime = DAY_1H + timedelta(days=15) - timedelta(hours=1),
) -> tuple[list[float], list[float]]:
    """Commit `count` new candles of one series after its `newest` open_time as the
    ingester does (extract.stream.sink.Committer: upsert + NOTIFY in one transaction)
    and time each, from the commit's start, to its StreamCandles and its
    StreamPredictions message (bench_scale.py reuses this at each warehouse size)."""
    import grpc
    import polars as pl

    from extract.load import conform
    from extract.stream.sink import Committer
    from klinehouse.v1 import candle_service_pb2 as cpb
    from klinehouse.v1 import candle_service_pb2_grpc, prediction_service_pb2_grpc
    from klinehouse.v1 import prediction_service_pb2 as ppb

    step = {"1m": timedelta(minutes=1), "5m": timedelta(minutes=5), "1h": timedelta(hours=1)}[
        interval
    ]
    committer = Committer(loader_url)
    candles_ms: list[float] = []
    predictions_ms: list[float] = []
    async with grpc.aio.insecure_channel(address) as ch:
        candles = candle_service_pb2_grpc.CandleServiceStub(ch).StreamCandles(
            cpb.StreamCandlesRequest(symbols=[symbol], interval=interval)
        )
        predictions = prediction_service_pb2_grpc.PredictionServiceStub(ch).StreamPredictions(
            ppb.StreamPredictionsRequest(symbols=[symbol], interval=interval)
        )
        await predictions.read()  # the current prediction
        await asyncio.sleep(0.5)  # both streams subscribed
        for k in range(1, count + 1):
            t = newest + step * k
            price = 40000 + k
            frame = conform(
                pl.DataFrame({
                    "market": ["spot"], "symbol": [symbol], "interval": [interval],
                    "open_time": [t], "close_time": [t + step - timedelta(milliseconds=1)],
                    "open": [str(price)], "high": [str(price + 10)], "low": [str(price - 10)],
                    "close": [str(price + 1)], "volume": ["12.5"], "quote_volume": ["1.0"],
                    "trades": [100], "taker_buy_base_volume": ["6.0"],
                    "taker_buy_quote_volume": ["1.0"], "source": ["stream"],
                }).with_columns(pl.col("open", "high", "low", "close", "volume", "quote_volume",
                                       "taker_buy_base_volume", "taker_buy_quote_volume")
                                .cast(pl.Decimal(38, 8)))
            )  # fmt: skip
            t0 = time.perf_counter()
            await asyncio.to_thread(committer.commit, frame)
            pending = {
                asyncio.ensure_future(candles.read()): candles_ms,
                asyncio.ensure_future(predictions.read()): predictions_ms,
            }
            while pending:  # each stream's message timed as it arrives
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
                    pending.pop(task).append((time.perf_counter() - t0) * 1e3)
        candles.cancel()
        predictions.cancel()
    committer.close()
    return candles_ms, predictions_ms


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--stream-candles", type=int, default=1_000_000)
    parser.add_argument("--bare-candles", type=int, default=200_000)
    parser.add_argument("--bars-1h", type=int, default=50_000, help="1h bars per series (20)")
    parser.add_argument("--live-candles", type=int, default=50, help="commits timed to clients")
    parser.add_argument("--model-iterations", type=int, default=400)
    parser.add_argument("--echo-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        run_echo_server(args.echo_server)
        return 0

    from devstack.stack.private import private_stack
    from klinehouse import paths
    from klinehouse.settings import get_settings
    from klinehouse.v1 import candle_service_pb2, prediction_service_pb2

    with private_stack("bench-grpc-"):
        home = paths.home()
        settings = get_settings(fresh=True)
        t0 = time.perf_counter()
        rows = fill_raw(settings.require_database_url(), args.stream_candles, args.bars_1h)
        print(
            f"setup: {rows:,} rows in raw: {args.stream_candles:,} 1m candles + 20 x {args.bars_1h:,} 1h candles ({time.perf_counter() - t0:.1f}s)"
        )
        t0 = time.perf_counter()
        version = register_champion(settings.require_database_url(), args.model_iterations)
        print(
            f"setup: champion {version} ({args.model_iterations} trees) registered ({time.perf_counter() - t0:.1f}s)"
        )

        ours_addr, echo_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        env = {**os.environ, "KLINEHOUSE_HOME": str(home), "KLINEHOUSE_GRPC_ADDRESS": ours_addr}
        logs = home / "bench-servers.log"
        with logs.open("w") as log:
            ours = subprocess.Popen(
                [sys.executable, "-m", "app", "serve"], env=env, stdout=log, stderr=log
            )
            echo = subprocess.Popen(
                [sys.executable, __file__, "--echo-server", echo_addr.rsplit(":", 1)[1]],
                stdout=log,
                stderr=log,
            )
        try:
            predict_req = prediction_service_pb2.GetPredictionRequest(
                symbol="BTCUSDT", interval="1h"
            ).SerializeToString()
            candles_req = candle_service_pb2.GetCandlesRequest(
                symbol="BTCUSDT", interval="1h", date=DAY_1H.date().isoformat()
            ).SerializeToString()
            p_method = "/klinehouse.v1.PredictionService/GetPrediction"
            c_method = "/klinehouse.v1.CandleService/GetCandles"
            wait_ready(ours_addr, p_method, predict_req, ours)
            wait_ready(echo_addr, f"/{ECHO_SERVICE}/Unary", b"%08d" % 1, echo)

            import grpc

            with grpc.insecure_channel(ours_addr) as ch:
                p_size = len(ch.unary_unary(p_method)(predict_req, timeout=10))
                candles_resp = ch.unary_unary(c_method)(candles_req, timeout=10)
                c_size = len(candles_resp)
            n_candles = len(candle_service_pb2.GetCandlesResponse.FromString(candles_resp).candles)
            one_candle = len(
                candle_service_pb2.GetCandlesResponse.FromString(candles_resp)
                .candles[0]
                .SerializeToString()
            )
            print(
                f"messages: GetPrediction {len(predict_req)} B -> {p_size} B; GetCandles {len(candles_req)} B -> {c_size} B ({n_candles} candles); one candle {one_candle} B"
            )
            print(
                f"load: {args.seconds:.0f}s per case, {args.concurrency} calls in flight, client and servers on loopback (2 cores shared)\n"
            )

            def pad(size: int, like: int) -> bytes:
                return (b"%08d" % size).ljust(like, b"\0")

            cases = [
                (
                    "echo (prediction-sized)",
                    echo_addr,
                    f"/{ECHO_SERVICE}/Unary",
                    pad(p_size, len(predict_req)),
                ),
                ("GetPrediction", ours_addr, p_method, predict_req),
                (
                    "echo (candles-sized)",
                    echo_addr,
                    f"/{ECHO_SERVICE}/Unary",
                    pad(c_size, len(candles_req)),
                ),
                ("GetCandles (1 day of 1h)", ours_addr, c_method, candles_req),
            ]
            results = {}
            print(f"{'case':<28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'calls':>8}")
            for name, addr, method, req in cases:
                r = asyncio.run(load(addr, method, req, args.seconds, args.concurrency))
                results[name] = r
                print(f"{name:<28} {r['rps']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['n']:>8}")
            for ours_name, echo_name in (
                ("GetPrediction", "echo (prediction-sized)"),
                ("GetCandles (1 day of 1h)", "echo (candles-sized)"),
            ):
                ratio = results[ours_name]["rps"] / results[echo_name]["rps"]
                print(
                    f"ratio {ours_name} / {echo_name}: {ratio:.2f} of the echo throughput (goal >= 0.5)"
                )
            print("\nlatency, one call in flight:")
            for name, addr, method, req in cases[:2]:
                r = asyncio.run(load(addr, method, req, args.seconds, 1))
                results[name + " (1 in flight)"] = r
                print(f"{name:<28} {r['rps']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['n']:>8}")
            p99 = results["GetPrediction (1 in flight)"]["p99"]
            print(f"GetPrediction p99 {p99:.2f} ms with one call in flight (goal < 10 ms)\n")

            bare = asyncio.run(bare_stream(echo_addr, args.bare_candles, one_candle))
            print(
                f"bare stream, one {one_candle} B message per candle: {args.bare_candles:,} messages, {bare:,.0f} candles/s"
            )
            rate, messages = asyncio.run(our_stream(ours_addr, args.stream_candles))
            print(
                f"StreamCandles replay: {args.stream_candles:,} candles in {messages:,} messages, {rate:,.0f} candles/s"
            )
            print(f"ratio StreamCandles / bare stream: {rate / bare:.2f} (goal >= 0.5)")
            candles_ms, predictions_ms = asyncio.run(
                live_latency(ours_addr, settings.loader_url(), args.live_candles)
            )
            for name, ms in (("StreamCandles", candles_ms), ("StreamPredictions", predictions_ms)):
                q = statistics.quantiles(ms, n=100)
                print(
                    f"commit (ingester's Committer) -> {name} message: p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms over {len(ms)} candles (goal p99 < 1000 ms)"
                )
        finally:
            stop_processes(ours, echo)
    return 0


def stop_processes(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM every server started for the run, then wait; kill what has not exited in 20 s."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
