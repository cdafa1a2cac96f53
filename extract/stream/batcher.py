"""The micro-batch of closed candles waiting for their commit.

Due when it holds `max_rows` candles or its oldest candle has waited
`max_seconds`, whichever comes first. A candle closed twice (Binance may resend)
is kept once, the later event winning. A failed write puts the batch back in
front, so nothing received is dropped while the database is away.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from extract.stream.messages import KlineEvent

Key = tuple[str, str, int]  # symbol, interval, open_ms


@dataclass(frozen=True, slots=True)
class Pending:
    event: KlineEvent
    arrived: float  # time.monotonic() when the closing frame arrived


class MicroBatcher:
    def __init__(self, max_rows: int, max_seconds: float) -> None:
        if max_rows < 1 or max_seconds <= 0:
            raise ValueError(
                f"flush every N candles or T seconds needs N >= 1 and T > 0, got {max_rows}, {max_seconds}"
            )
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self._items: dict[Key, Pending] = {}
        self._oldest: float | None = None

    def __len__(self) -> int:
        return len(self._items)

    def add(self, event: KlineEvent, arrived: float) -> None:
        key = (event.symbol, event.interval, event.open_ms)
        self._items.pop(key, None)
        self._items[key] = Pending(event, arrived)
        if self._oldest is None:
            self._oldest = arrived

    def seconds_until_due(self, now: float | None = None) -> float | None:
        """0 when due, None when empty, else how long until the age limit."""
        if self._oldest is None:
            return None
        if len(self._items) >= self.max_rows:
            return 0.0
        now = time.monotonic() if now is None else now
        return max(0.0, self._oldest + self.max_seconds - now)

    def take(self) -> list[Pending]:
        items = list(self._items.values())
        self._items.clear()
        self._oldest = None
        return items

    def put_back(self, items: list[Pending]) -> None:
        """Return a batch whose write failed; events received since then stay newer."""
        newer = self._items
        self._items = {(p.event.symbol, p.event.interval, p.event.open_ms): p for p in items}
        for key, pending in newer.items():
            self._items.pop(key, None)
            self._items[key] = pending
        if self._items:
            self._oldest = min(p.arrived for p in self._items.values())
