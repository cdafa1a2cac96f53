"""One LISTEN connection for the whole service, fanned out to the open streams.

The ingester sends `NOTIFY klinehouse_candles` with {market, symbol, interval,
open_time} after each flush. A notification only marks a subscription's symbol
dirty and wakes it; the stream then reads every candle newer than what it sent,
so a lost or coalesced notification never loses a candle. After a reconnect all
subscriptions are woken to catch up on what landed while the connection was down.
Subscriptions are indexed by (market, interval, symbol): a commit of one bar of every
series costs each notification the subscriptions of its series, not all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import psycopg

from klinehouse import channels

log = logging.getLogger(__name__)

CANDLES_CHANNEL = channels.CANDLES
MODELS_CHANNEL = channels.MODELS
MARTS_CHANNEL = channels.MARTS
# Streams read raw by key (serving.klines): a candle the ingester announced is readable
# at once, no dbt run needed. transform.runner.run_dbt still sends MARTS_CHANNEL after
# each run; every stream then catches up (harmless: it reads only what is new).


@dataclass(eq=False)
class Subscription:
    market: str
    interval: str
    symbols: frozenset[str] | None  # None: every symbol
    dirty: set[str] = field(default_factory=set)
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def mark(self, symbol: str | None) -> None:
        if symbol is None:
            self.dirty.update(self.symbols or ())
        else:
            self.dirty.add(symbol)
        self.event.set()

    async def wait(self) -> set[str]:
        """The symbols marked since the last call (empty after a reconnect of an all-symbol one)."""
        await self.event.wait()
        self.event.clear()
        dirty, self.dirty = self.dirty, set()
        return dirty


class NotifyListener:
    def __init__(
        self,
        url: str,
        *,
        # called with the notification's payload (the pair whose champion changed; '' after
        # a reconnect: any pair may have)
        on_models: Callable[[str], Awaitable[None]] | None = None,
        on_connection: Callable[[bool], Awaitable[None]] | None = None,
        retry_seconds: float = 1.0,
    ) -> None:
        self._url = url
        self._on_models = on_models
        self._on_connection = on_connection
        self._retry = retry_seconds
        self._subs: set[Subscription] = set()
        # (market, interval) -> symbol (None: every symbol) -> its subscriptions
        self._index: dict[tuple[str, str], dict[str | None, set[Subscription]]] = {}
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def subscribe(self, market: str, interval: str, symbols: frozenset[str] | None) -> Subscription:
        sub = Subscription(market, interval, symbols)
        self._subs.add(sub)
        by_symbol = self._index.setdefault((market, interval), {})
        for symbol in _keys(sub):
            by_symbol.setdefault(symbol, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub not in self._subs:
            return
        self._subs.discard(sub)
        by_symbol = self._index[(sub.market, sub.interval)]
        for symbol in _keys(sub):
            subs = by_symbol[symbol]
            subs.discard(sub)
            if not subs:
                del by_symbol[symbol]
        if not by_symbol:
            del self._index[(sub.market, sub.interval)]

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notify-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=5
                ) as conn:
                    await conn.execute(f"LISTEN {CANDLES_CHANNEL}")
                    await conn.execute(f"LISTEN {MODELS_CHANNEL}")
                    await conn.execute(f"LISTEN {MARTS_CHANNEL}")
                    self.connected.set()
                    if self._on_connection is not None:
                        await self._on_connection(True)
                    if not first:
                        log.info("LISTEN connection restored; streams catch up")
                        for sub in list(self._subs):
                            sub.mark(None)
                        if self._on_models is not None:
                            await self._on_models("")
                    first = False
                    async for note in conn.notifies():
                        await self._dispatch(note.channel, note.payload)
            except psycopg.OperationalError as exc:
                if self.connected.is_set() or first:
                    self.connected.clear()
                    if self._on_connection is not None:
                        await self._on_connection(False)
                log.warning("LISTEN connection lost (%s); retrying in %.1fs", exc, self._retry)
                first = False
                await asyncio.sleep(self._retry)

    async def _dispatch(self, channel: str, payload: str) -> None:
        if channel == MODELS_CHANNEL:
            if self._on_models is not None:
                await self._on_models(payload)
            return
        if channel == MARTS_CHANNEL:
            for sub in list(self._subs):
                sub.mark(None)
            return
        try:
            data = json.loads(payload)
            market, symbol, interval = (
                str(data["market"]),
                str(data["symbol"]),
                str(data["interval"]),
            )
        except (ValueError, KeyError, TypeError):
            log.warning(
                "ignoring a %s notification without market/symbol/interval: %r", channel, payload
            )
            return
        by_symbol = self._index.get((market, interval), {})
        for sub in (*by_symbol.get(symbol, ()), *by_symbol.get(None, ())):
            sub.mark(symbol)


def _keys(sub: Subscription) -> tuple[str | None, ...]:
    return (None,) if sub.symbols is None else tuple(sub.symbols)
