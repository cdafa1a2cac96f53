"""The stream step of `make demo`: a short, bounded live run against the local stand-ins.

The websocket stand-in plays the last day of the real BTCUSDT and ETHUSDT 1h
archive (May 2025) with forming updates, a garbage frame and one dropped
connection; the REST stand-in serves the same archive for the backfill. The run
stops once the timeline is played (at most `max_seconds`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.demo.output import say
from devstack.standin import binance_rest
from devstack.standin.binance_ws import (
    Scenario,
    StandinThread,
    archive_candles,
    generated_timeline,
)
from extract.stream.cli import summary
from extract.stream.ingester import StreamIngester, StreamOptions, StreamStats
from klinehouse import paths
from klinehouse.envvars import temporary_environ
from klinehouse.settings import get_settings

SYMBOLS = ("BTCUSDT", "ETHUSDT")
DAY = 24


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    try:
        with temporary_environ(values):
            get_settings(fresh=True)
            yield
    finally:
        get_settings(fresh=True)


def run_demo(max_seconds: float = 30.0) -> StreamStats:
    archive = paths.shared_data_dir() / "binance/spot-archive"
    files = {s: archive / f"{s}-1h-2025-05.csv" for s in SYMBOLS}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(f"real archive data not found: {', '.join(missing)}")
    _seed_if_empty(files)
    series = [archive_candles(p, symbol=s, interval="1h")[-DAY:] for s, p in files.items()]
    scenario = Scenario(
        generated_timeline(series, updates=3), drops={12: 3}, garbage={4}, pace=0.05
    )
    with (
        binance_rest.StandinThread(binance_rest.default_data_dir()) as rest,
        _env(rest.env()),
        StandinThread(scenario) as ws,
        _env({"KLINEHOUSE_BINANCE_WS_URL": ws.url}),
    ):
        say(f"  websocket stand-in {ws.url}, REST stand-in {rest.url}")
        stats = asyncio.run(_run(ws, max_seconds))
    for key, value in summary(stats).items():
        say(f"  {key:<16} {value}")
    if stats.closed == 0 or stats.unfilled_gaps:
        raise RuntimeError(f"stream demo incomplete: {summary(stats)}")
    return stats


async def _run(ws: StandinThread, max_seconds: float) -> StreamStats:
    options = StreamOptions(
        market="spot", symbols=SYMBOLS, intervals=("1h",), reconnect_initial=0.2,
        max_seconds=max_seconds,
    )  # fmt: skip
    ingester = StreamIngester(options, settings=get_settings(fresh=True))
    task = asyncio.create_task(ingester.run())
    played = await asyncio.get_running_loop().run_in_executor(None, ws.wait_finished, max_seconds)
    if played:
        await asyncio.sleep(1.0)
        ingester.stop()
    return await task


def _seed_if_empty(files: dict[str, Path]) -> None:
    """Without any stored candle there is nothing to backfill from: store the day before,
    as the batch extract would have."""
    from extract.archive import read_archive_csv
    from extract.load import load_frame
    from extract.stream.sink import newest_open_times

    settings = get_settings(fresh=True)
    url = settings.require_database_url()
    known = newest_open_times(url, market="spot", series=[(s, "1h") for s in SYMBOLS])
    for symbol, path in files.items():
        if (symbol, "1h") not in known:
            frame = read_archive_csv(path, market="spot", symbol=symbol, interval="1h")
            load_frame(frame.sort("open_time").slice(-2 * DAY, DAY), url=url)
