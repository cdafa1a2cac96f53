"""The open streams' reads of the warehouse, through one gate per service.

A commit wakes every stream that watches one of its series at once: with hundreds of
subscribers, hundreds of reads would queue for the pool together, past its queue limit
(psycopg_pool's max_waiting: TooManyRequests, which ended streams with
RESOURCE_EXHAUSTED), and ahead of the unary calls, which then missed their deadlines.
Here at most `concurrency` stream reads hold or wait for a pooled connection; the rest
wait in this gate, unbounded and in order, which costs no slot of the pool's queue. A
stream read that still meets a full pool (unary calls filled its queue) waits and tries
again: a stream waits as long as it takes and is never ended for a busy pool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from inference.store import PoolExhausted

log = logging.getLogger(__name__)
T = TypeVar("T")
BUSY_RETRY_SECONDS = 0.05  # a stream read's next try after the pool's queue was full


class StreamReads:
    def __init__(self, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError(f"stream reads need a concurrency of at least 1, not {concurrency}")
        self.concurrency = concurrency
        self._gate = asyncio.Semaphore(concurrency)

    async def read(self, action: Callable[[], Awaitable[T]]) -> T:
        """`action()` (a read of the store that waits for a connection without a deadline)
        once a slot of the gate is free; again after a short pause while the pool's queue
        is full. Other failures (the database down) are the caller's."""
        while True:
            async with self._gate:
                try:
                    return await action()
                except PoolExhausted:
                    log.debug("stream read: the pool's queue is full; trying again")
            await asyncio.sleep(BUSY_RETRY_SECONDS)


def concurrency_for(pool_max_size: int) -> int:
    """Stream reads at once for a pool of `pool_max_size`: half of it, the rest for unary
    calls."""
    return max(1, pool_max_size // 2)
