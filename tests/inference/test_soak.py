"""The soak of issue 14 item 4 at a small size: StreamCandles subscribers and
GetPrediction loops on a small pool while the ingester's Committer lands a new closed
bar of every series several times a second; every subscriber gets every candle of its
series exactly once, in order, and no call fails (bench/soak.py's run_soak, the one
bench/bench_scale.py --soak runs at warehouse sizes)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bench.soak import run_soak
from extract.load import load_frame
from inference.server import ServerThread
from klinehouse.settings import Settings

from ..marts import create_database, drop_database, with_db
from .conftest import FIRST_OPEN, candles
from .test_predictions import register, stub_of, wait_for_version

SERIES = ["BTCUSDT"] + [f"S{k:02d}USDT" for k in range(1, 10)]


def test_subscribers_get_every_new_candle_once_under_load(
    stack: Settings, server_factory: Callable[..., ServerThread]
) -> None:
    name = create_database(stack, prefix="soak_")
    owner = with_db(stack.require_database_url(), name)
    try:
        for k, symbol in enumerate(SERIES):
            load_frame(candles(symbol, FIRST_OPEN, 30, base=str(100 * (k + 1))), url=owner)
        # a pool of 2 and a queue of 8 for 20 streams and 5 loops: every commit wakes all
        # the streams at once, more than the pool's queue takes (the streams' gate holds
        # them; without it streams ended with RESOURCE_EXHAUSTED and unary calls too)
        server = server_factory(
            with_db(stack.reader_url(), name), pool_max_size=2, pool_max_waiting=8
        )
        register(owner, "m1", buy=0.0, sell=0.0, quality=0.01)
        wait_for_version(stub_of(server), "m1")
        report = asyncio.run(
            run_soak(
                f"127.0.0.1:{server.port}",
                owner,
                SERIES,
                interval="1h",
                seconds=3.0,
                subscribers=20,
                loops=5,
                tick=0.2,
            )
        )
    finally:
        drop_database(stack, name)
    assert report.commits >= 10, report
    assert report.candles_committed == report.commits * len(SERIES)
    assert report.errors == {}, report.error_line()
    assert (report.duplicates, report.missing, report.out_of_order, report.unexpected) == (
        0,
        0,
        0,
        0,
    )
    assert report.received == report.expected == 20 * report.commits
    assert report.predict_ms  # the loops really ran during the commits
