"""Request-weight pacing: use the published budget fully without ever earning a 429.

Binance counts request weight per IP per calendar minute and reports the running
total in `X-MBX-USED-WEIGHT-1M`. The pacer spends weight at a steady rate just
under the limit (a token bucket holding at most one second of budget, so no
minute can exceed the limit), and reads the header after each response: when
someone else on the same IP eats into the budget, it waits for the next minute.
A 429/418 pauses every worker for the server's Retry-After.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Binance's published REQUEST_WEIGHT limits per IP and minute (exchangeInfo rateLimits).
SPOT_WEIGHT_LIMIT = 6000
FUTURES_WEIGHT_LIMIT = 2400
PUBLISHED_LIMITS = {
    "spot": SPOT_WEIGHT_LIMIT,
    "usdm": FUTURES_WEIGHT_LIMIT,
    "coinm": FUTURES_WEIGHT_LIMIT,
}

MAX_KLINES_PER_CALL = {"spot": 1000, "usdm": 1500, "coinm": 1500}


def kline_weight(market: str, limit: int) -> int:
    """Request weight of a klines call: 2 on spot; 1/2/5/10 by limit on futures."""
    if market == "spot":
        return 2
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


def best_page_size(market: str) -> int:
    """The klines `limit` with the most rows per unit of weight (futures: 499 rows for 2)."""
    if market == "spot":
        return MAX_KLINES_PER_CALL["spot"]
    candidates = (99, 499, 1000, 1500)
    return max(candidates, key=lambda n: (n / kline_weight(market, n), n))


class WeightPacer:
    def __init__(
        self,
        limit_per_minute: int,
        *,
        target: float = 0.96,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit_per_minute
        self.rate = limit_per_minute * target / 60.0  # weight per second
        self.capacity = max(self.rate, 10.0)
        self._tokens = self.capacity
        self._clock, self._wall, self._sleep = clock, wall, sleep
        self._last = clock()
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        self.paused_seconds = 0.0

    def acquire(self, weight: int) -> None:
        """Block until `weight` may be spent."""
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if now < self._blocked_until:
                    wait = self._blocked_until - now
                elif self._tokens >= weight - 1e-9:  # float dust must not stall us
                    self._tokens -= weight
                    return
                else:
                    wait = (weight - self._tokens) / self.rate
            self._sleep(min(max(wait, 0.001), 1.0))

    def observe(self, used_weight: int | None, next_weight: int = 10) -> None:
        """Feed the server's X-MBX-USED-WEIGHT-1M; near the limit, wait for the next minute."""
        if used_weight is None or used_weight + next_weight * 4 < self.limit:
            return
        wall = self._wall()
        self.pause(60.0 - wall % 60.0 + 0.05)

    def pause(self, seconds: float) -> None:
        """Nobody spends weight for `seconds` (Retry-After, or the minute's budget is gone)."""
        with self._lock:
            now = self._clock()
            until = now + seconds
            if until > self._blocked_until:
                self.paused_seconds += until - max(self._blocked_until, now)
                self._blocked_until = until
                self._tokens = 0.0
