"""Concurrent reads of the newest features, coalesced into one read per (market, interval).

GetPrediction asks for one symbol; 32 calls in flight used to make 32 round trips
through the pool (and compute the same features 32 times). Here the calls of one
(market, interval) join a batch; one read (`Store.latest_features` for the batch's
symbols) serves them all, and while it runs the next calls gather in the next batch.

Never stale: every call is answered from a read that started after the call arrived
(a batch only takes calls before its read starts), so a candle committed, or revised,
before the call is always in its answer, whichever writer committed it, without any
notification. A read's failure is every caller's failure in its batch (the same
status each would have had alone). One read per series at a time: under a busy pool
the next batch waits for the read before it, then for a connection (up to the longest
deadline among its callers).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from inference.requests import Series
from inference.store import Store

BATCH_SYMBOLS = 200  # distinct symbols one coalesced read may ask for (requests.MAX_SYMBOLS)


@dataclass(eq=False)
class _Batch:
    symbols: set[str] = field(default_factory=set)
    timeout: float | None = 0.0  # the longest wait for a connection among its callers
    result: asyncio.Future[dict[str, tuple[Any, ...]]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class FeatureReads:
    """`await reads.latest(series, symbol, timeout)`: the symbol's newest feature row
    (as `Store.latest_features` gives it) or None, from a read shared with the calls
    of the same series in flight."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._waiting: dict[Series, list[_Batch]] = {}  # batches not started, oldest first
        self._readers: dict[Series, asyncio.Task[None]] = {}
        self.reads = 0  # reads made (for tests: fewer than the calls under load)

    async def latest(
        self, series: Series, symbol: str, timeout: float | None
    ) -> tuple[Any, ...] | None:
        batch = self._join(series, symbol, timeout)
        if series not in self._readers:
            self._readers[series] = asyncio.create_task(self._read_all(series))
        # shielded: a caller that goes away (its client cancelled) does not cancel the
        # read the other callers wait for
        rows = await asyncio.shield(batch.result)
        return rows.get(symbol)

    def _join(self, series: Series, symbol: str, timeout: float | None) -> _Batch:
        queue = self._waiting.setdefault(series, [])
        if not queue or (
            symbol not in queue[-1].symbols and len(queue[-1].symbols) >= BATCH_SYMBOLS
        ):
            queue.append(_Batch())
        batch = queue[-1]
        batch.symbols.add(symbol)
        if timeout is None or batch.timeout is None:
            batch.timeout = None
        else:
            batch.timeout = max(batch.timeout, timeout)
        return batch

    async def _read_all(self, series: Series) -> None:
        """Read the series' waiting batches one after another until none is left."""
        queue = self._waiting[series]
        try:
            while queue:
                batch = queue.pop(0)
                self.reads += 1
                try:
                    rows = await self._store.latest_features(
                        series, sorted(batch.symbols), timeout=batch.timeout
                    )
                except Exception as exc:
                    batch.result.set_exception(exc)
                else:
                    batch.result.set_result({row[0]: row for row in rows})
        except asyncio.CancelledError:  # the service stops: no caller waits for ever
            batch.result.cancel()
            for waiting in queue:
                waiting.result.cancel()
            raise
        finally:
            del self._readers[series], self._waiting[series]
