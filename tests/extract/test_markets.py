"""Every table keyed by market covers exactly klinehouse.klines.MARKETS."""

from __future__ import annotations

import pytest

from devstack.standin import binance_rest
from extract import archive, pacing, rest
from extract.stream import ingester
from klinehouse.klines import MARKETS
from klinehouse.settings import Settings


def test_market_tables_cover_every_market() -> None:
    for table in (
        archive.ARCHIVE_ROOTS,
        pacing.PUBLISHED_LIMITS,
        pacing.MAX_KLINES_PER_CALL,
        ingester._WS_URL_SETTING,
        binance_rest.StandinConfig().weight_limits,
    ):
        assert tuple(table) == MARKETS
    # The stand-in keeps its own copy of Binance's archive layout: the same one.
    assert {m: root for root, m in binance_rest._ARCHIVE_ROOT.items()} == archive.ARCHIVE_ROOTS


@pytest.mark.parametrize("market", MARKETS)
def test_each_market_has_urls_and_an_archive_folder(market: str) -> None:
    url = archive.archive_url("http://h", market, "BTCUSDT", "1h", "2024-11")
    assert archive.market_from_path(url) == market
    settings = Settings()
    assert rest.base_url(market, settings).startswith("http")
    assert ingester.ws_base_url(market, settings).startswith("ws")
