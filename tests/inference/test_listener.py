"""The NOTIFY listener's fan-out: a candle notification marks exactly the subscriptions
of its (market, interval, symbol) and the all-symbol ones of its series, through the
index (no scan of every open stream); an unsubscribed stream leaves nothing behind."""

from __future__ import annotations

import asyncio
import json

from inference.listener import CANDLES_CHANNEL, NotifyListener


def _note(market: str, symbol: str, interval: str) -> str:
    return json.dumps({"market": market, "symbol": symbol, "interval": interval, "open_time": "x"})


def test_a_candle_wakes_only_the_streams_of_its_series() -> None:
    listener = NotifyListener("postgresql://unused/db")
    btc = listener.subscribe("spot", "1m", frozenset({"BTCUSDT"}))
    both = listener.subscribe("spot", "1m", frozenset({"BTCUSDT", "ETHUSDT"}))
    every = listener.subscribe("spot", "1m", None)
    other_interval = listener.subscribe("spot", "1h", frozenset({"BTCUSDT"}))
    other_market = listener.subscribe("usdm", "1m", frozenset({"BTCUSDT"}))

    asyncio.run(listener._dispatch(CANDLES_CHANNEL, _note("spot", "ETHUSDT", "1m")))
    woken = [s for s in (btc, both, every, other_interval, other_market) if s.event.is_set()]
    assert woken == [both, every]
    assert both.dirty == {"ETHUSDT"} and every.dirty == {"ETHUSDT"}

    asyncio.run(listener._dispatch(CANDLES_CHANNEL, _note("spot", "BTCUSDT", "1m")))
    assert btc.dirty == {"BTCUSDT"} and both.dirty == {"ETHUSDT", "BTCUSDT"}
    assert not other_interval.event.is_set() and not other_market.event.is_set()

    for sub in (btc, both, every, other_interval, other_market):
        listener.unsubscribe(sub)
    listener.unsubscribe(btc)  # twice: harmless
    assert listener._subs == set() and listener._index == {}
    asyncio.run(listener._dispatch(CANDLES_CHANNEL, _note("spot", "BTCUSDT", "1m")))
