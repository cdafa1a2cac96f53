"""The champion model, loaded from the registry and hot-reloaded when another is promoted.

The registry (issue 7) owns the model: `training.registry.load_champion(url)`
returns it with `.predict(features) -> p_up, expected_log_return`; this module only
notices a change of champion (a cheap query on `ml.model_registry`, every few
seconds and on `NOTIFY klinehouse_models`) and swaps the loaded model atomically.
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

log = logging.getLogger(__name__)


class ChampionModel(Protocol):
    version: str
    buy_threshold: float
    sell_threshold: float

    def predict(self, features: pl.DataFrame) -> pl.DataFrame: ...


Loader = Callable[[str | None], ChampionModel | None]


def registry_loader(url: str | None) -> ChampionModel | None:
    from training.registry import load_champion

    return load_champion(url)  # type: ignore[no-any-return]


class ChampionHolder:
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
        self.model: ChampionModel | None = None
        self.error: str | None = None

    @property
    def version(self) -> str | None:
        return self.model.version if self.model is not None else None

    async def refresh(self) -> None:
        """Load the registry's champion if it differs from the one held."""
        async with self._lock:
            try:
                wanted = await self._store.champion_version()
            except pg_errors.UndefinedTable:
                wanted = None
            if wanted == self.version:
                return
            if wanted is None:
                log.warning("the registry has no champion any more")
                self.model = None
                return
            model = await asyncio.to_thread(self._loader, self._url)
            self.model = model
            self.error = None
            log.info("champion model %s loaded", model.version if model else None)

    async def poke_async(self) -> None:
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
            except Exception as exc:  # a broken model file must not kill the reload loop
                # shown to clients in FAILED_PRECONDITION: never an endpoint's credentials
                self.error = redact.mask(f"{type(exc).__name__}: {exc}")
                log.exception("loading the champion failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            self._wake.clear()
