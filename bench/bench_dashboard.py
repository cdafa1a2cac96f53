"""Benchmark of `klinehouse dashboard`: page load and chart callback at the demo's size and at
1M rows, against the bare SQL read of the same window, in one run.

    .venv/bin/python bench/bench_dashboard.py [--rows 1000000] [--repeat 5]

Starts its own private stack (PostgreSQL + moto S3 in a temporary KLINEHOUSE_HOME), loads

- the demo's warehouse: BTCUSDT and ETHUSDT 1h, 2024-11 … 2025-05, from ../shared/data's
  archives through extract (as `make demo` does);
- `--rows` synthetic 1m bars of one series (SYNUSDT, a random walk with a few outage gaps)
  through COPY into raw.binance_klines;

runs dbt, then times (median of `--repeat`):

1. the chart callback in process (`dashboard.app._chart`: bounds, bars downsampled in SQL,
   gaps, features, the figure, and its JSON for the browser) for the demo series' whole range
   and for the last year of the 1m series;
2. the bare baseline: the raw SQL of the same window at full resolution, fetched
   (what a dashboard without downsampling reads before drawing anything);
3. in Debian's chromium (playwright): the page load until the first chart is drawn, and the
   switch to the 1m series' last year until its chart is drawn.

and prints each time and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import io
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SYN = "SYNUSDT"
SYN_START = datetime(2023, 1, 1, tzinfo=UTC)


def copy_synthetic(url: str, rows: int, seed: int = 7) -> None:
    """`rows` 1m bars of SYNUSDT (minus ~20 short outages) into raw through COPY."""
    import numpy as np
    import polars as pl
    import psycopg

    rng = np.random.default_rng(seed)
    close = np.round(100.0 * np.exp(np.cumsum(rng.normal(0, 0.0008, rows))), 4)
    open_ = np.concatenate([[close[0]], close[:-1]])
    spread = np.abs(rng.normal(0, 0.0004, rows))
    volume = np.round(rng.gamma(2.0, 5.0, rows), 4)
    minutes = np.arange(rows, dtype="int64")
    keep = np.ones(rows, dtype=bool)
    for start in rng.integers(100, rows - 100, 20):
        keep[start : start + int(rng.integers(1, 30))] = False
    base = np.datetime64(SYN_START.replace(tzinfo=None), "ms")
    open_time = base + minutes.astype("timedelta64[m]")
    frame = pl.DataFrame(
        {
            "market": "spot",
            "symbol": SYN,
            "interval": "1m",
            "open_time": open_time,
            "close_time": open_time + np.timedelta64(59_999, "ms"),
            "open": open_,
            "high": np.round(np.maximum(open_, close) * (1 + spread), 4),
            "low": np.round(np.minimum(open_, close) * (1 - spread), 4),
            "close": close,
            "volume": volume,
            "quote_volume": np.round(volume * close, 4),
            "trades": rng.integers(1, 500, rows),
            "taker_buy_base_volume": np.round(volume * rng.uniform(0.2, 0.8, rows), 4),
            "taker_buy_quote_volume": np.round(volume * close * 0.5, 4),
            "source": "import",
        }
    ).filter(pl.Series(keep))
    buffer = io.BytesIO()
    frame.with_columns(
        pl.col("open_time", "close_time").dt.strftime("%Y-%m-%dT%H:%M:%S%.3f+00:00")
    ).write_csv(buffer, include_header=False)
    columns = ", ".join(frame.columns)
    statement = f"COPY raw.binance_klines ({columns}) FROM STDIN (FORMAT csv)"
    with psycopg.connect(url) as conn, conn.cursor() as cur, cur.copy(statement) as copy:
        copy.write(buffer.getvalue())
    print(f"copied {frame.height:,} 1m bars of {SYN} into raw.binance_klines")


def load_demo(url: str) -> None:
    from extract.archive import read_archive_csv
    from extract.load import load_frame
    from klinehouse.paths import shared_data_dir

    folder = shared_data_dir() / "binance" / "spot-archive"
    n = 0
    for path in sorted(folder.glob("*USDT-1h-*.csv")):
        symbol = path.name.split("-")[0]
        frame = read_archive_csv(path, market="spot", symbol=symbol, interval="1h")
        n += load_frame(frame, url=url).inserted
    print(f"loaded the demo's {n:,} 1h bars (BTCUSDT, ETHUSDT) from {folder}")


def median(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm: plans cached, pool open
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def bare(url: str, key: Any, start: datetime, end: datetime) -> Callable[[], int]:
    import psycopg

    def run() -> int:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT open_time, open, high, low, close, volume FROM marts.candles"
                " WHERE market = %s AND symbol = %s AND interval = %s"
                " AND open_time >= %s AND open_time < %s ORDER BY open_time",
                (key.market, key.symbol, key.interval, start, end),
            ).fetchall()
        return len(rows)

    return run


def browser_times(base: str, repeat: int, year_bucket: str) -> tuple[float, float]:
    from playwright.sync_api import sync_playwright

    from devstack.browser import CHROMIUM, FLAGS

    chart_js = """(want) => { const gd = document.querySelector('#chart .js-plotly-plot');
        return !!(gd && gd.data && gd.layout && gd.layout.title &&
                  String(gd.layout.title.text || '').includes(want)); }"""
    loads, switches = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        for i in range(repeat + 1):
            started = time.perf_counter()
            page.goto(base + "/")
            page.wait_for_function(chart_js, arg="BTCUSDT 1h", polling="raf")
            load = time.perf_counter() - started
            page.click("label:has-text('1y')")  # the demo's 7 months: the same chart
            page.click("#series")
            started = time.perf_counter()
            page.get_by_text(f"{SYN} 1m (spot)").click()
            # the year's chart: one candle per `year_bucket`
            page.wait_for_function(
                chart_js, arg=f"{SYN} 1m (spot), one candle per {year_bucket}", polling="raf"
            )
            switch = time.perf_counter() - started
            if i:  # the first round warms the browser cache
                loads.append(load)
                switches.append(switch)
        browser.close()
    return statistics.median(loads), statistics.median(switches)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()

    import plotly.io.json
    import psycopg

    from dashboard import queries
    from dashboard.app import Warehouse, _chart
    from dashboard.queries import SeriesKey, plan, window
    from devstack.stack.private import private_stack
    from klinehouse.settings import get_settings
    from transform.runner import run_dbt

    with private_stack("bench-dash-") as settings:
        url = settings.require_database_url()
        load_demo(url)
        copy_synthetic(url, options.rows)
        t0 = time.perf_counter()
        run_dbt(["run"], database_url=url)
        print(f"dbt run: {time.perf_counter() - t0:.1f}s")
        warehouse = Warehouse.open(settings.reader_url(), get_settings())

        demo = SeriesKey("spot", "BTCUSDT", "1h")
        syn = SeriesKey("spot", SYN, "1m")
        last = SYN_START + timedelta(minutes=options.rows)
        cases = [
            ("demo size, BTCUSDT 1h, whole range", demo, "all",
             datetime(2024, 11, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)),
            (f"{options.rows:,} rows, {SYN} 1m, last year", syn, "1y",
             last - timedelta(days=365), last),
        ]  # fmt: skip
        for label, key, choice, start, end in cases:

            def callback(key: SeriesKey = key, choice: str = choice) -> int:
                figure, _summary = _chart(warehouse, key, choice, None, None, "rsi_14")
                return len(plotly.io.json.to_json_plotly(figure))

            with psycopg.connect(url) as conn:
                win = plan(conn, key, window(key, start, end))
            print(f"  window: bucket {win.bucket}, source {win.source or key.interval}")
            with psycopg.connect(url) as conn:
                for name, read in (
                    ("bars", queries.bars),
                    ("gaps", queries.gaps),
                    ("features", queries.features),
                ):
                    took = median(lambda read=read, key=key, win=win: read(conn, key, win), 1)
                    print(f"  {name}: {took * 1000:.1f} ms")
                took = median(lambda key=key: queries.newest(conn, key), 1)
                print(f"  newest: {took * 1000:.1f} ms")
            chart_s = median(callback, options.repeat)
            bare_s = median(bare(url, key, start, end), options.repeat)
            rows = bare(url, key, start, end)()
            print(
                f"{label}: chart callback {chart_s * 1000:8.1f} ms (≤2,000 candles drawn) | "
                f"bare SQL of the {rows:,} rows {bare_s * 1000:8.1f} ms | "
                f"ratio {chart_s / bare_s:5.2f}"
            )

        port = _free_port()
        env_url = settings.reader_url()
        server = subprocess.Popen(
            [sys.executable, "-m", "app", "dashboard", "--port", str(port)],
            cwd=REPO,
            env={**_environ(), "KLINEHOUSE_READER_DATABASE_URL": env_url},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(f"http://127.0.0.1:{port}/")
            with psycopg.connect(url) as conn:
                year = plan(
                    conn, syn, window(syn, max(SYN_START, last - timedelta(days=365)), last)
                )
            load_s, switch_s = browser_times(
                f"http://127.0.0.1:{port}", options.repeat, str(year.bucket)
            )
            print(
                f"chromium: page load to the first chart (demo series) {load_s * 1000:8.1f} ms; "
                f"switch to {SYN} 1m, last year of {options.rows:,} rows, until drawn "
                f"{switch_s * 1000:8.1f} ms"
            )
        finally:
            server.terminate()
            server.wait(timeout=10)
    return 0


def _environ() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(REPO)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, timeout: float = 30) -> None:
    from urllib.error import URLError
    from urllib.request import urlopen

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urlopen(url, timeout=2):
                return
        except (URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


if __name__ == "__main__":
    raise SystemExit(main())
