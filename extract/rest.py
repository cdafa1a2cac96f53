"""Binance REST klines over python-binance: pages, weight pacing, retries, closed candles only.

One `RestSource` per market. Its base URL comes from the settings (python-binance's
Client exposes API_URL / FUTURES_URL / FUTURES_COIN_URL, which we point there), so
the same code talks to Binance or to the local stand-in. Each worker thread has a
Client of its own (requests sessions are not shared across threads); all share
one `WeightPacer`.

Retries: 429/418 wait the server's Retry-After and do not count as failures (up
to `max_throttled`); 5xx, timeouts and connection errors back off exponentially
with full jitter, at most `max_attempts` times; anything else (-1121 unknown
symbol, -1120 unknown interval) fails at once with a message naming it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException

from extract.frames import ARRAY_FIELDS, to_klines
from extract.pacing import PUBLISHED_LIMITS, WeightPacer, best_page_size, kline_weight
from klinehouse import klines
from klinehouse.errors import KlinehouseError
from klinehouse.settings import Settings, get_settings


class RestError(KlinehouseError):
    """A REST call failed for good; the message names the market, symbol and reason."""


class InvalidSymbol(RestError):
    pass


@dataclass
class RestCounters:
    requests: int = 0
    throttled: int = 0  # 429/418 responses
    retries: int = 0  # 5xx/timeouts retried
    weight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)


def base_url(market: str, settings: Settings) -> str:
    klines.check_market(market)
    return {
        "spot": settings.binance_rest_url,
        "usdm": settings.binance_futures_rest_url,
        "coinm": settings.binance_coinm_rest_url,
    }[market].rstrip("/")


class RestSource:
    """Klines, server time and symbols of one Binance market."""

    def __init__(
        self,
        market: str,
        *,
        settings: Settings | None = None,
        pacer: WeightPacer | None = None,
        max_attempts: int = 6,
        max_throttled: int = 20,
        backoff_base: float = 0.25,
        backoff_cap: float = 20.0,
        timeout: float = 10.0,
    ) -> None:
        self.market = klines.check_market(market)
        self.settings = settings or get_settings()
        self.url = base_url(market, self.settings)
        self.pacer = pacer or WeightPacer(PUBLISHED_LIMITS[market])
        self.page_size = best_page_size(market)
        self.counters = RestCounters()
        self.max_attempts, self.max_throttled = max_attempts, max_throttled
        self.backoff_base, self.backoff_cap, self.timeout = backoff_base, backoff_cap, timeout
        self._local = threading.local()

    # -- the python-binance client of this thread
    def _client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = Client(ping=False, requests_params={"timeout": self.timeout})
            client.API_URL = f"{self.url}/api"
            client.FUTURES_URL = f"{self.url}/fapi"
            client.FUTURES_COIN_URL = f"{self.url}/dapi"
            self._local.client = client
        return client

    def _call(self, what: str, weight: int, fn: Callable[[Client], Any]) -> Any:
        attempts = throttled = 0
        while True:
            self.pacer.acquire(weight)
            client = self._client()
            self.counters.add(requests=1, weight=weight)
            try:
                result = fn(client)
                self._observe(client, weight)
                return result
            except BinanceAPIException as exc:
                self._observe(client, weight)
                if exc.status_code in (429, 418):
                    throttled += 1
                    self.counters.add(throttled=1)
                    retry_after = _retry_after(exc.response)
                    if throttled > self.max_throttled:
                        raise RestError(
                            f"{what}: still rate limited after {throttled} waits"
                        ) from exc
                    self.pacer.pause(retry_after)
                    continue
                if exc.status_code >= 500:
                    attempts += 1
                    reason = f"HTTP {exc.status_code}"
                else:
                    raise _client_error(what, exc) from exc
            except (requests.RequestException, BinanceRequestException) as exc:
                attempts += 1
                reason = type(exc).__name__
            if attempts >= self.max_attempts:
                raise RestError(
                    f"{what}: gave up after {attempts} attempts ({reason}) at {self.url}"
                )
            self.counters.add(retries=1)
            delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempts - 1))
            time.sleep(random.uniform(0, delay))  # full jitter spreads retries of many workers

    def _observe(self, client: Client, weight: int) -> None:
        response = getattr(client, "response", None)
        if response is None:
            return
        used = response.headers.get("X-MBX-USED-WEIGHT-1M") or response.headers.get(
            "x-mbx-used-weight-1m"
        )
        self.pacer.observe(int(used) if used and used.isdigit() else None, weight)

    # -- endpoints
    def server_time_ms(self) -> int:
        call = {
            "spot": lambda c: c.get_server_time(),
            "usdm": lambda c: c.futures_time(),
            "coinm": lambda c: c.futures_coin_time(),
        }[self.market]
        return int(self._call(f"{self.market} server time", 1, call)["serverTime"])

    def exchange_symbols(self, *, quote: str | None = None, status: str | None = None) -> list[str]:
        """Symbols listed in exchangeInfo, optionally by quote asset and status (e.g. TRADING)."""
        call = {
            "spot": lambda c: c.get_exchange_info(),
            "usdm": lambda c: c.futures_exchange_info(),
            "coinm": lambda c: c.futures_coin_exchange_info(),
        }[self.market]
        info = self._call(f"{self.market} exchangeInfo", 20 if self.market == "spot" else 1, call)
        return sorted(
            s["symbol"]
            for s in info["symbols"]
            if (quote is None or s.get("quoteAsset") == quote)
            and (status is None or (s.get("status") or s.get("contractStatus")) == status)
        )

    def klines_page(
        self, symbol: str, interval: str, start_ms: int, end_ms: int, limit: int | None = None
    ) -> list[list[Any]]:
        """One page: at most `limit` candles with start_ms <= open_time <= end_ms."""
        limit = limit or self.page_size
        params = {
            "symbol": symbol,
            "interval": interval,
            "startTime": start_ms,
            "endTime": end_ms,
            "limit": limit,
        }
        call = {
            "spot": lambda c: c.get_klines(**params),
            "usdm": lambda c: c.futures_klines(**params),
            "coinm": lambda c: c.futures_coin_klines(**params),
        }[self.market]
        what = f"{self.market} {symbol} {interval} klines"
        return list(self._call(what, kline_weight(self.market, limit), call))

    def klines_range(
        self,
        symbol: str,
        interval: str,
        start_ms: int,
        end_ms: int,
        on_page: Callable[[int], None] | None = None,
    ) -> list[list[Any]]:
        """All candles with start_ms <= open_time <= end_ms, paginating by startTime."""
        rows: list[list[Any]] = []
        cursor = start_ms
        while cursor <= end_ms:
            page = self.klines_page(symbol, interval, cursor, end_ms)
            if not page:
                break
            rows += page
            if on_page:
                on_page(len(page))
            if len(page) < self.page_size:
                break
            last = int(page[-1][0])
            if _next_grid_open(interval, last) > end_ms:
                break  # a full last page that ends the range: no empty extra request
            cursor = last + 1  # not last + interval: an off-grid open_time must not hide the next
        return rows


def _next_grid_open(interval: str, open_ms: int) -> int:
    """The first grid open_time after `open_ms` (weeks open on Mondays; months: a lower bound)."""
    length = klines.interval_length(interval)
    if length is None:
        return open_ms + 28 * 86_400_000
    step = int(length.total_seconds() * 1000)
    offset = 4 * 86_400_000 if interval == "1w" else 0  # 1970-01-05 was a Monday
    return offset + ((open_ms - offset) // step + 1) * step


def _retry_after(response: Any) -> float:
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0


def _client_error(what: str, exc: BinanceAPIException) -> RestError:
    if exc.code == -1121:
        return InvalidSymbol(f"{what}: Binance says invalid symbol (code -1121)")
    if exc.code == -1120:
        return RestError(f"{what}: Binance says invalid interval (code -1120)")
    return RestError(f"{what}: HTTP {exc.status_code}, code {exc.code}: {exc.message}")


_INT_FIELDS = ("open_time", "close_time", "trades")


def rows_to_frame(
    rows: list[list[Any]], *, market: str, symbol: str, interval: str
) -> pl.DataFrame:
    """REST kline arrays (ms times, string decimals) in the kline schema, source 'rest'."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(ARRAY_FIELDS)
    # Column-wise construction: times and trade counts arrive as ints, decimals as text.
    raw = pl.DataFrame(
        [
            pl.Series(name, values, dtype=pl.Int64 if name in _INT_FIELDS else pl.String)
            for name, values in zip(ARRAY_FIELDS, columns[: len(ARRAY_FIELDS)], strict=True)
        ]
    ).with_columns(pl.col(name).cast(pl.String) for name in _INT_FIELDS)
    return to_klines(
        raw,
        market=market,
        symbol=symbol,
        interval=interval,
        source="rest",
        time_unit="ms",
        what=f"{market} {symbol} {interval} REST",
    )
