"""`klinehouse serve | candles | predict | advise | watch`."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import click

from klinehouse.klines import INTERVALS, MARKETS

_market = click.option("--market", type=click.Choice(MARKETS), default="spot", show_default=True)
_interval = click.option(
    "--interval", type=click.Choice(list(INTERVALS)), default="1h", show_default=True
)
_address = click.option(
    "--address", default=None, help="host:port (default KLINEHOUSE_GRPC_ADDRESS)"
)


@click.command()
@click.option("--address", default=None, help="listen address (default KLINEHOUSE_GRPC_ADDRESS)")
@click.option("--grace", default=10.0, show_default=True, help="seconds open calls get on SIGTERM")
def serve(address: str | None, grace: float) -> None:
    """Run the gRPC service (candles, predictions, advice) until SIGTERM."""
    from inference.server import ServerConfig
    from inference.server import serve as run

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = ServerConfig.from_settings(grace_seconds=grace)
    if address:
        config.address = address
    asyncio.run(run(config))


@click.command()
@click.argument("symbol")
@_interval
@_market
@click.option("--date", "day", default=None, help="one UTC date, YYYY-MM-DD")
@click.option("--start", type=click.DateTime(), default=None, help="range start (UTC)")
@click.option("--end", type=click.DateTime(), default=None, help="range end, exclusive (UTC)")
@_address
def candles(
    symbol: str,
    interval: str,
    market: str,
    day: str | None,
    start: datetime | None,
    end: datetime | None,
    address: str | None,
) -> None:
    """The candles of SYMBOL on one UTC --date or in --start/--end, over gRPC."""
    from inference.client import Client, format_candle
    from klinehouse.errors import KlinehouseError

    if not day and not start:
        raise KlinehouseError("give --date YYYY-MM-DD or --start (and --end)")
    count = 0
    with Client(address) as client:
        for candle in client.get_candles(
            symbol, interval, market=market, day=day, start=start, end=end
        ):
            click.echo(format_candle(candle))
            count += 1
    click.echo(f"{count} candles", err=True)


@click.command()
@click.argument("symbol")
@_interval
@_market
@_address
def predict(symbol: str, interval: str, market: str, address: str | None) -> None:
    """The champion's prediction and advice for the next bar of SYMBOL."""
    from inference.client import Client, format_prediction

    with Client(address) as client:
        click.echo(format_prediction(client.predict(symbol, interval, market=market)))


@click.command()
@click.argument("symbols", nargs=-1)
@_interval
@_market
@_address
def advise(symbols: tuple[str, ...], interval: str, market: str, address: str | None) -> None:
    """Symbols ranked by expected return, with the best buy and the worst sell."""
    from inference.client import Client, format_prediction

    with Client(address) as client:
        response = client.advise(list(symbols), interval, market=market)
    for rank, p in enumerate(response.ranked, 1):
        click.echo(f"{rank:>3}. {format_prediction(p)}")
    buy = response.best_buy.symbol if response.HasField("best_buy") else "none"
    sell = response.worst_sell.symbol if response.HasField("worst_sell") else "none"
    click.echo(f"best buy: {buy}   worst sell: {sell}   (model {response.model_version})")


@click.command()
@click.argument("symbols", nargs=-1, required=True)
@_interval
@_market
@click.option(
    "--replay-from", type=click.DateTime(), default=None, help="replay candles from (UTC)"
)
@click.option("--predictions", is_flag=True, help="stream predictions instead of candles")
@_address
def watch(
    symbols: tuple[str, ...],
    interval: str,
    market: str,
    replay_from: datetime | None,
    predictions: bool,
    address: str | None,
) -> None:
    """Stream new candles (or predictions) of SYMBOLS as bars close; Ctrl-C stops."""
    from inference.client import Client, format_candle, format_prediction

    with Client(address) as client:
        if predictions:
            for p in client.watch_predictions(list(symbols), interval, market=market):
                click.echo(format_prediction(p))
        else:
            for c in client.watch_candles(
                list(symbols), interval, market=market, replay_from=replay_from
            ):
                click.echo(format_candle(c))
