"""Binance when it answers, else the local stand-in: how `make demo` gets its candles."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests

from klinehouse.envvars import temporary_environ
from klinehouse.settings import get_settings


def binance_answers(url: str) -> bool:
    try:
        return requests.get(f"{url.rstrip('/')}/api/v3/ping", timeout=3).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def binance_or_standin(log: Callable[[str], None]) -> Iterator[None]:
    """Inside, the settings point at Binance if its REST API answers, else at a local
    stand-in serving the real archives (started here, stopped on exit, settings restored)."""
    from devstack.standin.binance_rest import StandinThread, default_data_dir

    settings = get_settings(fresh=True)
    if binance_answers(settings.binance_rest_url):
        log(f"source: Binance at {settings.binance_rest_url}")
        yield
        return
    with StandinThread(default_data_dir()) as standin:
        try:
            with temporary_environ(standin.env()):
                get_settings(fresh=True)
                log(
                    f"source: {settings.binance_rest_url} unreachable, using the local "
                    f"stand-in at {standin.url}"
                )
                yield
        finally:
            get_settings(fresh=True)
