"""The demo's extract step: BTCUSDT and ETHUSDT 1h into the lake and raw, then the summary.

From Binance when its REST API answers; otherwise from the local stand-in serving
the real archives in ../shared/data (or seeded synthetic candles without them).
The first run backfills from 2024-11-01 (archives for whole months, REST for the
tail); later runs resume after the newest stored candle.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from datetime import UTC, datetime

import click
import requests

from klinehouse.settings import get_settings

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
FIRST_START = datetime(2024, 11, 1, tzinfo=UTC)


def _binance_answers(url: str) -> bool:
    try:
        return requests.get(f"{url.rstrip('/')}/api/v3/ping", timeout=3).status_code == 200
    except requests.RequestException:
        return False


def step() -> None:
    from extract.extractor import Extractor, ExtractRequest, stored_latest
    from klinehouse.standin.binance_rest import StandinThread, default_data_dir

    with ExitStack() as stack:
        settings = get_settings(fresh=True)
        if _binance_answers(settings.binance_rest_url):
            click.echo(f"  source: Binance at {settings.binance_rest_url}")
        else:
            standin = stack.enter_context(StandinThread(default_data_dir()))
            saved = {k: os.environ.get(k) for k in standin.env()}
            os.environ.update(standin.env())
            stack.callback(_restore, saved)
            settings = get_settings(fresh=True)
            click.echo(
                f"  source: {settings.binance_rest_url} unreachable, using the local stand-in "
                f"at {standin.url}"
            )
        resume = all(stored_latest("spot", s, "1h") is not None for s in SYMBOLS)
        request = ExtractRequest(
            "spot", SYMBOLS, ["1h"], start=None if resume else FIRST_START, source="auto"
        )
        summary = Extractor(request, log=lambda line: click.echo(f"  {line}")).run()
        for line in summary.lines():
            click.echo(line)
        if summary.failures:
            raise RuntimeError("; ".join(summary.failures))


def _restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings(fresh=True)
