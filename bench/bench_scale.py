"""How each cost grows with the warehouse: the same measurements at several sizes, in one run.

    .venv/bin/python bench/bench_scale.py [--sizes 1000000,5000000,20000000] [--series 200]
        [--seconds 5] [--live-candles 30]
        [--parts refresh,incremental,validate,training,serving,soak]
        [--soak 60] [--soak-subscribers 200] [--soak-loops 50] [--soak-tick 1]

Starts its own private stack (PostgreSQL + moto S3 in a temporary KLINEHOUSE_HOME) and,
per size, a fresh migrated database holding `--series` synthetic 1m series (random
walks from devstack.synthetic, generated vectorised in 1M-row chunks; generation is
timed apart). Per size it measures:

1. load: extract.load.load_frames (COPY straight into raw: primary key, indexes, the
   change-log trigger) against a bare COPY of the same CSV into an unindexed table;
2. `dbt run --full-refresh` rows of raw per second;
3. `dbt run` after one new bar per series (wall, dbt's SQL time and each incremental
   model's);
4. serving (`klinehouse serve` against a bare grpc.aio echo of the same message sizes,
   bench/bench_grpc.py's echo server, the two loaded in alternating rounds): GetPrediction
   p50/p99 with 1 and 32 calls in flight, GetAdvice over every series (a 1m champion: the
   native series served fresh);
5. `klinehouse validate --since 1d` (expectations.gate.validate, the data's clock);
6. the training read of one month of 1h rows (training.dataset.load_dataset).

7. live: `--live-candles` new BTCUSDT 1m bars committed one by one through the
   ingester's commit path (extract.stream.sink.Committer: upsert + NOTIFY in one
   transaction; the websocket parse before it is bench_stream.py's), each timed to its
   StreamCandles and its StreamPredictions message (bench_grpc.live_latency), p99.
8. soak (`--soak SECONDS`, 0: none): `--soak-subscribers` StreamCandles subscribers
   (one series each, spread over every series) and `--soak-loops` GetPrediction loops
   while the Committer lands the next bar of every series each `--soak-tick` seconds
   (bench/soak.py); then errors by code, every subscriber's candles checked exactly
   once and in order, GetPrediction p50/p99 and req/s, commit -> message p50/p99.
`--parts` picks what runs after the load (e.g. `--parts refresh,incremental` for dbt
alone, `--parts soak` for the soak alone; default all).
Prints each size's figures and, last, the ratios against the first size, with the goals.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CHUNK_ROWS = 1_000_000
INCREMENTAL_MODELS = ("candles", "candle_features", "candle_labels")
GOALS = {
    "incremental dbt run s": 1.5,
    "GetPrediction p50 ms (1)": 1.5,
    "GetPrediction p99 ms (1)": 1.5,
    "GetPrediction p99 ms (32)": 1.5,
    "GetAdvice p50 ms": 1.5,
    "commit -> StreamCandles p99 ms": 1.5,
    "commit -> StreamPredictions p99 ms": 1.5,
}


@dataclass
class Figures:
    size: int
    values: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def put(self, name: str, value: float) -> None:
        self.values[name] = value
        print(f"  {name:<34} {value:>14,.2f}", flush=True)


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def _chunks(series: int, bars: int, first: int = 0) -> Iterator[Any]:
    from devstack.synthetic import random_walk_klines

    per_chunk = max(1, CHUNK_ROWS // max(bars, 1))
    for offset in range(0, series, per_chunk):
        yield random_walk_klines(
            min(per_chunk, series - offset), bars, first=first, series_offset=offset
        )


def _fresh_database(admin_url: str, name: str) -> str:
    import psycopg
    from psycopg import sql

    from klinehouse.migrate import upgrade

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    return url


def measure_load(url: str, fig: Figures, series: int, bars: int) -> None:
    import psycopg
    from psycopg import sql

    from extract.load import conform, copy_frame, load_frames

    generated = 0.0
    frames = []
    for chunk in _chunks(series, bars):
        t, frame = _timed(lambda chunk=chunk: conform(chunk))
        frames.append(frame)
        generated += t
    rows = sum(f.height for f in frames)
    bare = sql.Identifier("public", "bench_bare_copy")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE raw.binance_klines INCLUDING DEFAULTS)").format(bare)
        )
        t_bare, _ = _timed(lambda: [copy_frame(conn, bare, f) for f in frames])
        conn.execute(sql.SQL("DROP TABLE {}").format(bare))
    t_load, stats = _timed(lambda: load_frames(frames, url=url))
    assert stats.inserted == rows, stats
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE raw.binance_klines")
    fig.put("rows in raw", rows)
    fig.put("generate+conform rows/s", rows / max(generated, 1e-9))
    fig.put("bare COPY rows/s", rows / t_bare)
    fig.put("load rows/s", rows / t_load)
    fig.put("load / bare COPY", t_bare / t_load)


def _model_times() -> dict[str, float]:
    """Each model's execution time in the last dbt run (run_results.json)."""
    import json

    from transform.runner import target_dir

    results = json.loads((target_dir() / "run_results.json").read_text())["results"]
    return {
        r["unique_id"].rsplit(".", 1)[1]: float(r["execution_time"])
        for r in results
        if r["unique_id"].startswith("model.")
    }


def measure_dbt(url: str, fig: Figures, series: int, bars: int, incremental: bool = True) -> None:
    import psycopg

    from extract.load import load_frames
    from transform.runner import run_dbt

    rows = int(fig.values["rows in raw"])
    t_full, _ = _timed(lambda: run_dbt(["run", "--full-refresh"]))
    fig.put("full refresh s", t_full)
    fig.put("full refresh rows/s", rows / t_full)
    for model, seconds in sorted(_model_times().items(), key=lambda item: -item[1]):
        fig.put(f"full refresh {model} s", seconds)
    if not incremental:
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")  # what autovacuum does after a build this size
    new = list(_chunks(series, 1, first=bars))
    assert load_frames(new).inserted == series
    t_inc, _ = _timed(lambda: run_dbt(["run"]))
    fig.put("incremental dbt run s", t_inc)
    models = _model_times()
    fig.put("incremental SQL s (models)", sum(models.values()))
    for model in INCREMENTAL_MODELS:
        fig.put(f"incremental {model} s", models.get(model, float("nan")))


def measure_validate(fig: Figures, bars: int) -> None:
    from devstack.synthetic import START
    from expectations.gate import validate

    as_of = START + timedelta(minutes=bars + 1)
    t, report = _timed(lambda: validate("1d", as_of=as_of))
    fig.put("validate --since 1d s", t)
    if not report.success:
        fig.notes.append("validate reported failures: " + report.summary().splitlines()[0])


def measure_training_read(url: str, fig: Figures, bars: int) -> None:
    from devstack.synthetic import START
    from training.dataset import DatasetSpec, load_dataset

    end = START + timedelta(minutes=bars)
    spec = DatasetSpec(interval="1h", start=end - timedelta(days=30), end=end)
    t, frame = _timed(lambda: load_dataset(spec, url=url))
    fig.put("training read 1 month (1h) s", t)
    fig.put("training read rows", frame.height)


@dataclass
class Samples:
    """One load case's call latencies (s), failed calls and seconds of load."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def add(self, other: Samples) -> None:
        self.latencies += other.latencies
        self.errors += other.errors
        self.seconds += other.seconds

    def summary(self) -> dict[str, float]:
        lat = self.latencies
        q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [lat[0]] * 99
        rps = len(lat) / self.seconds
        return {"rps": rps, "p50": q[49] * 1e3, "p99": q[98] * 1e3, "errors": self.errors}


async def _samples(
    address: str, method: str, request: bytes, seconds: float, concurrency: int
) -> Samples:
    """bench_grpc.load's loop, counting failed calls instead of stopping at the first."""
    import grpc

    out = Samples()
    async with grpc.aio.insecure_channel(address) as ch:
        call = ch.unary_unary(method)
        await call(request, timeout=30)  # warm-up
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                try:
                    await call(request, timeout=30)
                except grpc.aio.AioRpcError:
                    out.errors += 1
                    continue
                out.latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        out.seconds = time.perf_counter() - t0
    return out


async def _load(
    address: str, method: str, request: bytes, seconds: float, concurrency: int
) -> dict[str, float]:
    return (await _samples(address, method, request, seconds, concurrency)).summary()


ROUNDS = 5  # a service and its echo take turns: the machine's load swings hit both alike


def _paired_load(
    ours: tuple[str, str, bytes], echo: tuple[str, str, bytes], seconds: float, concurrency: int
) -> tuple[dict[str, float], dict[str, float]]:
    """`seconds` of load on each of `ours` and `echo` (address, method, request), in
    ROUNDS alternating turns: the ratio compares the two under the same conditions."""
    totals = Samples(), Samples()
    for _ in range(ROUNDS):
        for total, (address, method, request) in zip(totals, (ours, echo), strict=True):
            total.add(
                asyncio.run(_samples(address, method, request, seconds / ROUNDS, concurrency))
            )
    return totals[0].summary(), totals[1].summary()


def _same_database(other: str, url: str) -> str:
    """`other` (a role's URL on the stack's default database) pointed at `url`'s database."""
    return other.rsplit("/", 1)[0] + "/" + url.rsplit("/", 1)[1]


def measure_live(address: str, url: str, fig: Figures, bars: int, count: int) -> None:
    from bench.bench_grpc import live_latency
    from devstack.synthetic import START
    from klinehouse.settings import get_settings

    newest = START + timedelta(minutes=bars)  # bar number `bars`: measure_dbt's +1 bar
    loader = _same_database(get_settings().loader_url(), url)
    candles_ms, predictions_ms = asyncio.run(
        live_latency(address, loader, count, symbol="BTCUSDT", interval="1m", newest=newest)
    )
    for name, ms in (("StreamCandles", candles_ms), ("StreamPredictions", predictions_ms)):
        q = statistics.quantiles(ms, n=100)
        fig.put(f"commit -> {name} p50 ms", q[49])
        fig.put(f"commit -> {name} p99 ms", q[98])


@dataclass(frozen=True)
class SoakSpec:
    seconds: float = 60.0
    subscribers: int = 200
    loops: int = 50
    tick: float = 1.0


def measure_soak(address: str, url: str, fig: Figures, series: int, spec: SoakSpec) -> None:
    from bench.soak import run_soak
    from devstack.synthetic import symbols
    from klinehouse.settings import get_settings

    loader = _same_database(get_settings().loader_url(), url)
    report = asyncio.run(
        run_soak(
            address,
            loader,
            symbols(series),
            seconds=spec.seconds,
            subscribers=spec.subscribers,
            loops=spec.loops,
            tick=spec.tick,
        )
    )
    for name, value in report.figures().items():
        fig.put(name, value)
    print(f"  soak {report.error_line()}", flush=True)
    if not report.clean:
        fig.notes.append(f"soak not clean: {report.error_line()}")


def measure_serving(
    url: str,
    fig: Figures,
    seconds: float,
    bars: int,
    live: int,
    *,
    series: int,
    soak: SoakSpec | None = None,
    figures: bool = True,
) -> None:
    import grpc

    from bench.bench_grpc import free_port, register_champion, wait_ready
    from klinehouse import paths
    from klinehouse.settings import get_settings
    from klinehouse.v1 import prediction_service_pb2

    register_champion(url, 100, interval="1m")
    reader = _same_database(get_settings().reader_url(), url)
    home = paths.home()
    ours_addr, echo_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "KLINEHOUSE_HOME": str(home),
        "KLINEHOUSE_DATABASE_URL": url,
        "KLINEHOUSE_READER_DATABASE_URL": reader,
        "KLINEHOUSE_GRPC_ADDRESS": ours_addr,
    }
    bench_grpc = REPO / "bench" / "bench_grpc.py"
    with (home / f"bench-scale-{fig.size}.log").open("w") as log:
        ours = subprocess.Popen(
            [sys.executable, "-m", "app", "serve"], env=env, stdout=log, stderr=log
        )
        echo = subprocess.Popen(
            [sys.executable, str(bench_grpc), "--echo-server", echo_addr.rsplit(":", 1)[1]],
            stdout=log,
            stderr=log,
        )
    try:
        p_method = "/klinehouse.v1.PredictionService/GetPrediction"
        a_method = "/klinehouse.v1.PredictionService/GetAdvice"
        predict = prediction_service_pb2.GetPredictionRequest(
            symbol="BTCUSDT", interval="1m"
        ).SerializeToString()
        advice = prediction_service_pb2.GetAdviceRequest(interval="1m").SerializeToString()
        wait_ready(ours_addr, p_method, predict, ours)
        wait_ready(echo_addr, "/bench.Echo/Unary", b"%08d" % 1, echo)
        if not figures:
            if soak is not None:
                measure_soak(ours_addr, url, fig, series, soak)
            return
        with grpc.insecure_channel(ours_addr) as ch:
            p_size = len(ch.unary_unary(p_method)(predict, timeout=30))
            call = ch.unary_unary(a_method)
            samples = []
            for _ in range(10):
                t, response = _timed(lambda: call(advice, timeout=60))
                samples.append(t * 1e3)
            ranked = len(prediction_service_pb2.GetAdviceResponse.FromString(response).ranked)
        fig.put("GetAdvice p50 ms", statistics.median(samples))
        fig.put("GetAdvice symbols ranked", ranked)
        echo_req = (b"%08d" % p_size).ljust(len(predict), b"\0")
        for flight in (1, 32):
            r, e = _paired_load(
                (ours_addr, p_method, predict),
                (echo_addr, "/bench.Echo/Unary", echo_req),
                seconds,
                flight,
            )
            fig.put(f"GetPrediction p50 ms ({flight})", r["p50"])
            fig.put(f"GetPrediction p99 ms ({flight})", r["p99"])
            fig.put(f"GetPrediction req/s ({flight})", r["rps"])
            fig.put(f"GetPrediction errors ({flight})", r["errors"])
            fig.put(f"echo req/s ({flight})", e["rps"])
            fig.put(f"GetPrediction / echo ({flight})", r["rps"] / e["rps"])
        if live:
            measure_live(ours_addr, url, fig, bars, live)
        if soak is not None:
            measure_soak(ours_addr, url, fig, series, soak)
    finally:
        from bench.bench_grpc import stop_processes

        stop_processes(ours, echo)
        _print_server_warnings(home / f"bench-scale-{fig.size}.log")


def _print_server_warnings(log: Path, most: int = 20) -> None:
    """The servers' distinct warning and error lines, counted (the log goes with the stack)."""
    import re
    from collections import Counter

    lines = log.read_text(errors="replace").splitlines()
    counted = Counter(
        re.sub(r"\d+", "N", line)[:200]
        for line in lines
        if any(w in line for w in ("WARNING", "ERROR", "Traceback", "Error"))
    )
    if counted:
        print(f"  server log ({log.name}): {sum(counted.values())} warning/error lines")
        for line, n in counted.most_common(most):
            print(f"    {n:>6} x {line}")


# what one size measures, in this order; the load always runs (`--parts` picks the rest)
PARTS = ("refresh", "incremental", "validate", "training", "serving", "soak")


def run_size(
    admin_url: str,
    size: int,
    series: int,
    seconds: float,
    live: int,
    parts: frozenset[str] = frozenset(PARTS),
    soak: SoakSpec | None = None,
) -> Figures:
    from klinehouse.envvars import temporary_environ
    from klinehouse.settings import get_settings
    from transform.runner import run_dbt

    fig = Figures(size)
    bars = size // series
    print(f"\n== {size:,} rows: {series} series x {bars:,} 1m bars", flush=True)
    url = _fresh_database(admin_url, f"bench_scale_{size}")
    with temporary_environ({"KLINEHOUSE_DATABASE_URL": url}):
        get_settings(fresh=True)
        if parts & {"refresh", "incremental", "validate", "training"}:
            run_dbt(["parse"])  # dbt's imports and parse: paid before any timing
        measure_load(url, fig, series, bars)
        if parts & {"refresh", "incremental", "validate", "training"}:
            # the incremental run, validate and the training read need the marts built
            measure_dbt(url, fig, series, bars, incremental="incremental" in parts)
        if "validate" in parts:
            measure_validate(fig, bars)
        if "training" in parts:
            measure_training_read(url, fig, bars)
        if parts & {"serving", "soak"}:
            try:
                measure_serving(
                    url, fig, seconds, bars, live, series=series,
                    soak=soak if "soak" in parts else None, figures="serving" in parts,
                )  # fmt: skip
            except Exception as exc:  # the serving figures depend on `klinehouse serve`
                fig.notes.append(f"serving not measured: {type(exc).__name__}: {exc}")
        for note in fig.notes:
            print(f"  note: {note}")
    get_settings(fresh=True)
    return fig


def print_summary(figures: list[Figures]) -> None:
    base = figures[0]
    names = list(dict.fromkeys(n for f in figures for n in f.values))
    header = f"{'figure':<34}" + "".join(f"{f.size:>14,}" for f in figures)
    print("\n" + header + "".join(f"{'x ' + format(f.size, ','):>16}" for f in figures[1:]))
    for name in names:
        line = f"{name:<34}" + "".join(
            f"{f.values[name]:>14,.2f}" if name in f.values else f"{'n/a':>14}" for f in figures
        )
        for f in figures[1:]:
            if name in f.values and base.values.get(name):
                line += f"{f.values[name] / base.values[name]:>16.2f}"
            else:
                line += f"{'':>16}"
        print(line)
    print("\ngoals:")
    last = figures[-1]
    for name, limit in GOALS.items():
        if name in last.values and name in base.values:
            ratio = last.values[name] / base.values[name]
            verdict = "met" if ratio <= limit else "MISSED"
            print(f"  {name} at {last.size:,} <= {limit} x {base.size:,}: {ratio:.2f} ({verdict})")
    for f in figures:
        checks = [
            ("full refresh rows/s >= 50,000", f.values.get("full refresh rows/s"), 50_000, True),
            ("GetPrediction >= 0.7 x echo at 32", f.values.get("GetPrediction / echo (32)"), 0.7, True),
            ("GetPrediction p99 < 10 ms at 1", f.values.get("GetPrediction p99 ms (1)"), 10, False),
            ("commit -> StreamCandles p99 < 1 s", f.values.get("commit -> StreamCandles p99 ms"), 1000, False),
            ("commit -> StreamPredictions p99 < 1 s", f.values.get("commit -> StreamPredictions p99 ms"), 1000, False),
            ("soak: zero errors", f.values.get("soak errors"), 1, False),
            ("soak: zero missing", f.values.get("soak missing"), 1, False),
            ("soak: zero duplicates", f.values.get("soak duplicates"), 1, False),
            ("soak: zero out of order", f.values.get("soak out of order"), 1, False),
        ]  # fmt: skip
        for label, value, limit, at_least in checks:
            if value is None:
                print(f"  {f.size:,}: {label}: n/a")
                continue
            ok = value >= limit if at_least else value < limit
            print(f"  {f.size:,}: {label}: {value:,.2f} ({'met' if ok else 'MISSED'})")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000000,5000000,20000000")
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0, help="per serving load case")
    parser.add_argument("--live-candles", type=int, default=30, help="commits timed, per size")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"what to measure after the load, comma-separated from {','.join(PARTS)}"
        " (validate, training and the incremental run build the marts first)",
    )
    parser.add_argument("--soak", type=float, default=60.0, help="soak seconds per size; 0: none")
    parser.add_argument("--soak-subscribers", type=int, default=200)
    parser.add_argument("--soak-loops", type=int, default=50, help="GetPrediction loops")
    parser.add_argument("--soak-tick", type=float, default=1.0, help="seconds between commits")
    args = parser.parse_args()
    parts = frozenset(p.strip() for p in args.parts.split(",") if p.strip())
    if parts - set(PARTS):
        parser.error(
            f"--parts: unknown {', '.join(sorted(parts - set(PARTS)))}; known: {', '.join(PARTS)}"
        )
    soak = (
        SoakSpec(args.soak, args.soak_subscribers, args.soak_loops, args.soak_tick)
        if args.soak > 0
        else None
    )
    if "soak" in parts and soak is None:
        parts -= {"soak"}
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    from devstack.stack.private import private_stack

    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()}")
    started = time.perf_counter()
    with private_stack("bench-scale-") as settings:
        admin = settings.require_database_url()
        figures = [
            run_size(
                admin,
                size,
                args.series,
                args.seconds,
                args.live_candles,
                parts,
                soak,
            )
            for size in sizes
        ]
    print_summary(figures)
    print(f"\nwall time {time.perf_counter() - started:,.0f} s; load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
