"""`klinehouse stream`: keep raw.binance_klines current to the last closed candle."""

from __future__ import annotations

import asyncio
import json
import logging
import signal

import click

from extract.stream.ingester import StreamIngester, StreamOptions, StreamStats
from klinehouse import klines
from klinehouse.errors import KlinehouseError


@click.command("stream")
@click.option("--market", type=click.Choice(klines.MARKETS), default="spot", show_default=True)
@click.option("--symbol", "symbols", multiple=True, required=True, help="Repeat per symbol.")
@click.option(
    "--interval",
    "intervals",
    multiple=True,
    default=("1m",),
    show_default=True,
    type=click.Choice(list(klines.INTERVALS)),
    help="Repeat per interval.",
)
@click.option("--flush-rows", default=500, show_default=True, help="Commit every N closed candles…")
@click.option("--flush-seconds", default=0.25, show_default=True, help="…or every T seconds.")
@click.option(
    "--lake-seconds",
    default=3600.0,
    show_default=True,
    help="Write to the lake at the latest after this long (sooner when an hour completes).",
)
@click.option("--no-lake", is_flag=True, help="Do not copy streamed candles to the lake.")
@click.option("--no-backfill", is_flag=True, help="Do not fill gaps over REST on (re)connect.")
@click.option("--health-port", type=int, default=None, help="Serve GET /healthz on this port.")
@click.option(
    "--health-host",
    default="127.0.0.1",
    show_default=True,
    help="Address /healthz binds (0.0.0.0 in a container whose probes come from outside).",
)
@click.option("--max-seconds", type=float, default=None, help="Stop (flushing) after this long.")
@click.option("-v", "--verbose", is_flag=True, help="Log connects, backfills and flushes.")
def stream(
    market: str,
    symbols: tuple[str, ...],
    intervals: tuple[str, ...],
    flush_rows: int,
    flush_seconds: float,
    lake_seconds: float,
    no_lake: bool,
    no_backfill: bool,
    health_port: int | None,
    health_host: str,
    max_seconds: float | None,
    verbose: bool,
) -> None:
    """Ingest closed candles from Binance's websocket until SIGTERM/SIGINT.

    Writes only closed candles (source `stream`) through the loader's upsert,
    NOTIFYs klinehouse_candles after each commit, backfills gaps over REST on
    every (re)connect and copies candles to the lake. On SIGTERM/SIGINT it
    commits what it received and exits 0. A summary is printed as JSON.
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        options = StreamOptions(
            market=market,
            symbols=tuple(s.upper() for s in symbols),
            intervals=intervals,
            flush_rows=flush_rows,
            flush_seconds=flush_seconds,
            lake_seconds=lake_seconds,
            lake=not no_lake,
            backfill=not no_backfill,
            health_host=health_host,
            health_port=health_port,
            max_seconds=max_seconds,
        )
    except ValueError as exc:
        raise KlinehouseError(str(exc)) from exc
    stats = asyncio.run(_run(StreamIngester(options)))
    click.echo(json.dumps(summary(stats), sort_keys=True))


async def _run(ingester: StreamIngester) -> StreamStats:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, ingester.stop)
    return await ingester.run()


def summary(stats: StreamStats) -> dict[str, object]:
    return {
        "frames": stats.frames,
        "forming_skipped": stats.forming,
        "closed_received": stats.closed,
        "committed": stats.committed,
        "inserted": stats.inserted,
        "revised": stats.revised,
        "unchanged": stats.unchanged,
        "backfilled": stats.backfilled,
        "lake_rows": stats.lake_rows,
        "malformed": dict(stats.skipped),
        "connects": stats.connects,
        "unfilled_gaps": stats.unfilled_gaps,
        "latency_seconds": stats.latency_quantiles(),
    }
