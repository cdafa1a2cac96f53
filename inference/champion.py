"""The champions, one per (market, interval), loaded from the registry and
hot-reloaded pair by pair when another is promoted.

The registry (issue 7) owns the models: `training.registry.load_champion(url,
market=, interval=)` returns one with `.predict(features) -> p_up,
expected_log_return`; this module only notices a change of champion (a cheap
query on `ml.model_registry` every few seconds, and `NOTIFY klinehouse_models`,
whose payload names the pair) and swaps that pair's model atomically; the other
pairs' models stay as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

import polars as pl
import psycopg
from psycopg import errors as pg_errors

from inference.store import Store
from klinehouse import redact
from training.registry import CHAMPIONS_SQL, ChampionChange

log = logging.getLogger(__name__)

Pair = tuple[str, str]  # (market, interval)


class ChampionModel(Protocol):
    version: str
    buy_threshold: float
    sell_threshold: float
    candidate: str  # what it predicts: which candidate, how many bars ahead, which target
    horizon_bars: int
    target: str

    def predict(self, features: pl.DataFrame) -> pl.DataFrame: ...


# (database URL, market, interval) -> that pair's champion, loaded, or None
Loader = Callable[[str | None, str, str], ChampionModel | None]


def registry_loader(url: str | None, market: str, interval: str) -> ChampionModel | None:
    from training.registry import load_champion

    return load_champion(url, market=market, interval=interval)  # type: ignore[no-any-return]


class ChampionHolder:
    """The loaded champion of every pair that has one (`get(market, interval)`)."""

    def __init__(
        self,
        store: Store,
        url: str | None,
        *,
        loader: Loader = registry_loader,
        poll_seconds: float = 2.0,
    ) -> None:
        self._store = store
        self._url = url
        self._loader = loader
        self._poll = poll_seconds
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.models: dict[Pair, ChampionModel] = {}
        self.errors: dict[Pair, str] = {}
        self.loads = 0  # models loaded since start (a reload of one pair adds one)

    def get(self, market: str, interval: str) -> ChampionModel | None:
        return self.models.get((market, interval))

    def error(self, market: str, interval: str) -> str | None:
        """Why the last load of this pair's champion failed, if it did."""
        return self.errors.get((market, interval))

    @property
    def versions(self) -> dict[Pair, str]:
        return {pair: model.version for pair, model in self.models.items()}

    async def _wanted(self) -> dict[Pair, str]:
        try:
            rows = await self._store.fetch(CHAMPIONS_SQL)
        except pg_errors.UndefinedTable:
            return {}
        return {(str(m), str(i)): str(v) for m, i, v in rows}

    async def refresh(self) -> None:
        """Load each pair's registry champion that differs from the one held; drop the
        pairs that have none any more. Unchanged pairs are not touched."""
        async with self._lock:
            wanted = await self._wanted()
            for pair in sorted(set(self.models) - set(wanted)):
                log.warning("the registry has no champion for %s %s any more", *pair)
                del self.models[pair]
            failures: list[Exception] = []
            for pair, version in sorted(wanted.items()):
                if self.versions.get(pair) == version:
                    continue
                try:
                    await self._load(pair)
                except Exception as exc:  # one broken pair must not stop the others
                    # shown to clients in FAILED_PRECONDITION: never an endpoint's credentials
                    self.errors[pair] = redact.mask(f"{type(exc).__name__}: {exc}")
                    log.exception("loading the champion of %s %s failed", *pair)
                    failures.append(exc)
            if failures:
                raise failures[0]

    async def _load(self, pair: Pair) -> None:
        model = await asyncio.to_thread(self._loader, self._url, *pair)
        self.loads += 1
        if model is None:
            self.models.pop(pair, None)
        else:
            self.models[pair] = model
        self.errors.pop(pair, None)
        log.info("champion of %s %s: %s loaded", *pair, model.version if model else None)

    async def poke_async(self, payload: str = "") -> None:
        """A `klinehouse_models` notification: check now (the payload names the pair)."""
        change = ChampionChange.parse(payload)
        if change is not None and self.versions.get((change.market, change.interval)) == (
            change.version
        ):
            return  # already serving it
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="champion-reload")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except (psycopg.Error, OSError) as exc:
                log.warning("champion check failed (%s); retrying", exc)
            except Exception:  # a broken model file must not kill the reload loop
                log.warning("a champion failed to load; retrying at the next check")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            self._wake.clear()
