"""A local stand-in of Binance's REST API and data.binance.vision archives (127.0.0.1 only).

Serves, over real HTTP (aiohttp):
  /api/v3/klines, /api/v3/time, /api/v3/exchangeInfo, /api/v3/ping      (spot)
  /fapi/v1/klines, /fapi/v1/time, /fapi/v1/exchangeInfo                  (USD-M)
  /dapi/v1/klines, /dapi/v1/time, /dapi/v1/exchangeInfo                  (COIN-M)
  /data/{spot|futures/um|futures/cm}/{monthly|daily}/klines/S/I/S-I-P.zip[.CHECKSUM]
Series come from the real archive CSVs in ../shared/data/binance (kept byte for
byte in the archives); any other listed symbol or interval gets synthetic candles
from a fixed seed, so everything is reproducible offline.

It behaves like Binance where our client depends on it: weight per request and per
calendar minute in `X-MBX-USED-WEIGHT-1M`, 429 with Retry-After when the limit is
exceeded, {"code":-1121,"msg":"Invalid symbol."} for an unknown symbol, candles
with open_time up to the server clock (the last one still forming). Tests steer it
through `StandinConfig` (clock, latency, injected 429/418/5xx, corrupt checksums)
in-process or via POST /_standin/config; GET /_standin/stats counts what it served.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hashlib
import io
import json
import math
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from extract.pacing import (
    MAX_KLINES_PER_CALL,
    PUBLISHED_LIMITS,
    kline_weight,
)
from klinehouse import klines, paths

_API = {"api": ("spot", "v3"), "fapi": ("usdm", "v1"), "dapi": ("coinm", "v1")}
_MAX_LIMIT = MAX_KLINES_PER_CALL
# Binance's archive layout, kept apart from extract.archive.ARCHIVE_ROOTS on purpose (a fake
# that shared the client's table could not catch its typo); tests/extract/test_markets.py
# checks that the two agree.
_ARCHIVE_ROOT = {"spot": "spot", "futures/um": "usdm", "futures/cm": "coinm"}
_SYNTHETIC_START_MS = 1_502_928_000_000  # 2017-08-17, Binance's first candles
SYNTHETIC_SYMBOLS = {
    "spot": ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT"),
    "usdm": ("BTCUSDT", "ETHUSDT", "BNBUSDT"),
    "coinm": ("BTCUSD_PERP", "ETHUSD_PERP"),
}


@dataclass
class Fault:
    """Answer the next `count` matching requests with `status` (429/418 carry Retry-After)."""

    status: int
    count: int = 1
    path_contains: str = ""
    retry_after: int = 1


@dataclass
class StandinConfig:
    clock_ms: int | None = None  # fixed server time; None = the real clock
    latency_s: float = 0.0
    weight_limits: dict[str, int] = field(default_factory=lambda: dict(PUBLISHED_LIMITS))
    faults: list[Fault] = field(default_factory=list)
    corrupt_checksums: set[str] = field(default_factory=set)  # archive file names
    extra_symbols: dict[str, list[str]] = field(default_factory=dict)  # market -> symbols

    def now_ms(self) -> int:
        return self.clock_ms if self.clock_ms is not None else int(time.time() * 1000)


@dataclass
class StandinStats:
    requests: int = 0
    kline_requests: int = 0
    weight: dict[str, int] = field(default_factory=dict)  # market -> total weight served
    status_counts: dict[int, int] = field(default_factory=dict)
    rate_limited: int = 0  # 429s from the weight limit itself (not injected)


# ---------------------------------------------------------------- data


@dataclass
class _RealSeries:
    open_ms: list[int]
    rows: list[list[Any]]  # REST arrays (times in ms)
    lines: list[str]  # the archive's text lines, as published
    months: dict[str, tuple[str, bytes]]  # YYYY-MM -> (file name, original CSV bytes)


def _load_real(root: Path) -> dict[tuple[str, str, str], _RealSeries]:
    series: dict[tuple[str, str, str], _RealSeries] = {}
    for path in sorted(root.glob("*/*.csv")):
        parts = path.stem.split("-")
        if len(parts) != 4:
            continue
        symbol, interval, year, month = parts
        data = path.read_bytes()
        entry = series.setdefault(("spot", symbol, interval), _RealSeries([], [], [], {}))
        entry.months[f"{year}-{month}"] = (path.name, data)
        for line in data.decode().splitlines():
            fields = line.split(",")
            if not fields[0].isdigit():
                continue  # header row
            divisor = 1000 if len(fields[0]) == 16 else 1
            row: list[Any] = [int(fields[0]) // divisor, *fields[1:6]]
            row += [int(fields[6]) // divisor, fields[7], int(fields[8]), *fields[9:12]]
            entry.rows.append(row)
            entry.lines.append(line)
    for entry in series.values():
        order = sorted(range(len(entry.rows)), key=lambda i: entry.rows[i][0])
        entry.rows = [entry.rows[i] for i in order]
        entry.lines = [entry.lines[i] for i in order]
        entry.open_ms = [r[0] for r in entry.rows]
    return series


def _interval_ms(interval: str) -> int | None:
    length = klines.INTERVALS.get(interval)
    return int(length.total_seconds() * 1000) if length is not None else None


def _month_start(ms: int, months_ahead: int = 0) -> int:
    d = datetime.fromtimestamp(ms / 1000, UTC)
    index = d.year * 12 + d.month - 1 + months_ahead
    return int(datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC).timestamp() * 1000)


def _grid(interval: str, start_ms: int) -> Iterator[int]:
    """Open times of an interval from the first one at or after start_ms."""
    step = _interval_ms(interval)
    if step is None:
        t = _month_start(start_ms)
        if t < start_ms:
            t = _month_start(start_ms, 1)
        while True:
            yield t
            t = _month_start(t, 1)
    offset = 4 * 86_400_000 if interval == "1w" else 0  # weeks open on Mondays
    t = offset + math.ceil((start_ms - offset) / step) * step
    while True:
        yield t
        t += step


def _close_ms(interval: str, open_ms: int) -> int:
    step = _interval_ms(interval)
    end = open_ms + step if step is not None else _month_start(open_ms, 1)
    return end - 1


def _synthetic_row(symbol: str, interval: str, open_ms: int) -> list[Any]:
    """A deterministic candle: the same (symbol, interval, time) always gives the same row."""
    seed = int.from_bytes(hashlib.blake2b(f"{symbol}|{open_ms}".encode(), digest_size=8).digest())
    base = 10 + (int.from_bytes(hashlib.blake2b(symbol.encode(), digest_size=4).digest()) % 50_000)
    phase = open_ms / 86_400_000 / 30
    mid = base * (1 + 0.2 * math.sin(phase) + 0.05 * math.sin(phase * 7.3))
    jitter = ((seed % 10_000) / 10_000 - 0.5) * 0.01
    open_ = mid * (1 + jitter)
    close = mid * (1 - jitter)
    high = max(open_, close) * (1 + ((seed >> 16) % 100) / 20_000)
    low = min(open_, close) * (1 - ((seed >> 24) % 100) / 20_000)
    volume = 1 + (seed >> 32) % 100_000 / 100
    trades = 1 + (seed >> 40) % 5000
    fmt = "{:.8f}".format
    return [
        open_ms,
        fmt(open_),
        fmt(high),
        fmt(low),
        fmt(close),
        fmt(volume),
        _close_ms(interval, open_ms),
        fmt(volume * mid),
        trades,
        fmt(volume / 2),
        fmt(volume * mid / 2),
        "0",
    ]


class KlineStore:
    """Where the stand-in's candles come from: real series first, synthetic otherwise."""

    def __init__(self, data_dir: Path | None) -> None:
        self.data_dir = data_dir
        archive_root = data_dir / "binance" if data_dir else None
        self.real = _load_real(archive_root) if archive_root and archive_root.is_dir() else {}
        exchange_info = (
            archive_root / "api" / "exchange_info_2021-10-12.json" if archive_root else None
        )
        self.spot_info: dict[str, Any] | None = None
        if exchange_info and exchange_info.is_file():
            self.spot_info = json.loads(exchange_info.read_text())

    def symbols(self, market: str, config: StandinConfig) -> dict[str, dict[str, Any]]:
        listed: dict[str, dict[str, Any]] = {}
        if market == "spot" and self.spot_info:
            listed = {s["symbol"]: s for s in self.spot_info["symbols"]}
        names = {*SYNTHETIC_SYMBOLS[market], *config.extra_symbols.get(market, [])}
        names |= {s for (m, s, _i) in self.real if m == market}
        for name in sorted(names - set(listed)):
            quote = next((q for q in ("USDT", "BUSD", "USD_PERP", "BTC") if name.endswith(q)), "")
            listed[name] = {
                "symbol": name,
                "status": "TRADING",
                "baseAsset": name[: len(name) - len(quote)] if quote else name,
                "quoteAsset": quote.replace("_PERP", "") if quote else "",
            }
        return listed

    def klines(
        self,
        market: str,
        symbol: str,
        interval: str,
        start: int | None,
        end: int | None,
        limit: int,
        now: int,
    ) -> list[list[Any]]:
        upper = now if end is None else min(end, now)
        real = self.real.get((market, symbol, interval))
        if real is not None:
            if start is None:
                hi = bisect.bisect_right(real.open_ms, upper)
                return real.rows[max(0, hi - limit) : hi]
            lo = bisect.bisect_left(real.open_ms, start)
            hi = bisect.bisect_right(real.open_ms, upper)
            return real.rows[lo : min(hi, lo + limit)]
        if start is None:
            step = _interval_ms(interval) or 31 * 86_400_000
            start = max(_SYNTHETIC_START_MS, upper - step * limit)
        rows: list[list[Any]] = []
        for t in _grid(interval, max(start, _SYNTHETIC_START_MS)):
            if t > upper or len(rows) >= limit:
                break
            rows.append(_synthetic_row(symbol, interval, t))
        return rows

    def archive_csv(
        self, market: str, symbol: str, interval: str, period: str
    ) -> tuple[bytes, bool] | None:
        """(CSV bytes, is_real) of one archive period, None when nothing falls in it."""
        real = self.real.get((market, symbol, interval))
        year, month = int(period[:4]), int(period[5:7])
        start = int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)
        if len(period) == 10:
            start += (int(period[8:10]) - 1) * 86_400_000
            stop = start + 86_400_000
        else:
            stop = _month_start(start, 1)
        if real is not None:
            if len(period) == 7 and period in real.months:
                return real.months[period][1], True
            lo = bisect.bisect_left(real.open_ms, start)
            hi = bisect.bisect_left(real.open_ms, stop)
            if lo == hi:
                return None
            return ("\n".join(real.lines[lo:hi]) + "\n").encode(), True
        # Spot archives switched to microseconds on 2025-01-01; futures stay in ms.
        micros = market == "spot" and start >= 1_735_689_600_000
        out = io.StringIO()
        for t in _grid(interval, max(start, _SYNTHETIC_START_MS)):
            if t >= stop:
                break
            row = _synthetic_row(symbol, interval, t)
            if micros:
                row[0], row[6] = row[0] * 1000, row[6] * 1000 + 999
            out.write(",".join(str(v) for v in row) + "\n")
        text = out.getvalue()
        return (text.encode(), False) if text else None


# ---------------------------------------------------------------- server


class _Weights:
    """Weight used per market in the current calendar minute, as Binance counts it."""

    def __init__(self) -> None:
        self.minute = -1
        self.used: dict[str, int] = {}

    def add(self, market: str, weight: int) -> int:
        minute = int(time.time() // 60)
        if minute != self.minute:
            self.minute, self.used = minute, {}
        self.used[market] = self.used.get(market, 0) + weight
        return self.used[market]


class BinanceStandin:
    def __init__(self, data_dir: Path | None = None, config: StandinConfig | None = None) -> None:
        self.store = KlineStore(data_dir)
        self.config = config or StandinConfig()
        self.stats = StandinStats()
        self._weights = _Weights()
        self._lock = threading.Lock()

    # -- helpers
    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.config.faults:
                if fault.count > 0 and fault.path_contains in path:
                    fault.count -= 1
                    return fault
        return None

    def _count(self, status: int) -> None:
        with self._lock:
            self.stats.status_counts[status] = self.stats.status_counts.get(status, 0) + 1

    def _json(
        self, body: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        self._count(status)
        return web.json_response(body, status=status, headers=headers)

    def _error(
        self, status: int, code: int, msg: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return self._json({"code": code, "msg": msg}, status, headers)

    async def _api(self, request: web.Request) -> web.Response:
        prefix, version, endpoint = (
            request.match_info["prefix"],
            request.match_info["version"],
            request.match_info["endpoint"],
        )
        market, expected_version = _API[prefix]
        with self._lock:
            self.stats.requests += 1
        if self.config.latency_s:
            await asyncio.sleep(self.config.latency_s)
        if version != expected_version:
            return self._error(404, -1, f"unknown path {request.path}")
        fault = self._take_fault(request.path)
        if fault is not None:
            if fault.status in (429, 418):
                return self._error(
                    fault.status,
                    -1003,
                    "Way too much request weight used; IP banned until later.",
                    {"Retry-After": str(fault.retry_after)},
                )
            return self._error(
                fault.status, -1001, "Internal error; unable to process your request."
            )
        query = request.query
        limit_max = _MAX_LIMIT[market]
        weight = {"ping": 1, "time": 1, "exchangeInfo": 20 if market == "spot" else 1}.get(endpoint)
        limit = 500
        if endpoint == "klines":
            try:
                limit = int(query.get("limit", "500"))
            except ValueError:
                return self._error(400, -1100, "Illegal characters found in parameter 'limit'.")
            if not 1 <= limit <= limit_max:
                return self._error(400, -1130, f"Invalid data sent for a parameter: limit {limit}.")
            weight = kline_weight(market, limit)
        if weight is None:
            return self._error(404, -1, f"unknown path {request.path}")
        with self._lock:
            used = self._weights.add(market, weight)
            self.stats.weight[market] = self.stats.weight.get(market, 0) + weight
            over = used > self.config.weight_limits[market]
            if over:
                self.stats.rate_limited += 1
        headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
        if over:
            headers["Retry-After"] = str(max(1, 60 - int(time.time()) % 60))
            return self._error(
                429,
                -1003,
                "Too much request weight used; please use WebSocket Streams for live updates.",
                headers,
            )
        now = self.config.now_ms()
        if endpoint == "ping":
            return self._json({}, headers=headers)
        if endpoint == "time":
            return self._json({"serverTime": now}, headers=headers)
        listed = self.store.symbols(market, self.config)
        if endpoint == "exchangeInfo":
            return self._exchange_info(market, listed, query, now, headers)
        symbol = query.get("symbol", "")
        if not symbol:
            return self._error(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
                headers,
            )
        if symbol not in listed:
            return self._error(400, -1121, "Invalid symbol.", headers)
        interval = query.get("interval", "")
        if interval not in klines.INTERVALS:
            return self._error(400, -1120, "Invalid interval.", headers)
        try:
            start = int(query["startTime"]) if "startTime" in query else None
            end = int(query["endTime"]) if "endTime" in query else None
        except ValueError:
            return self._error(
                400, -1100, "Illegal characters found in parameter 'startTime'.", headers
            )
        rows = self.store.klines(market, symbol, interval, start, end, limit, now)
        with self._lock:
            self.stats.kline_requests += 1
        return self._json(rows, headers=headers)

    def _exchange_info(
        self,
        market: str,
        listed: dict[str, dict[str, Any]],
        query: Any,
        now: int,
        headers: dict[str, str],
    ) -> web.Response:
        wanted = [query["symbol"]] if "symbol" in query else list(listed)
        if "symbols" in query:
            wanted = json.loads(query["symbols"])
        unknown = [s for s in wanted if s not in listed]
        if unknown:
            return self._error(400, -1121, "Invalid symbol.", headers)
        body = {
            "timezone": "UTC",
            "serverTime": now,
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.config.weight_limits[market],
                },
            ],
            "exchangeFilters": [],
            "symbols": [listed[s] for s in wanted],
        }
        return self._json(body, headers=headers)

    async def _archive(self, request: web.Request) -> web.Response:
        with self._lock:
            self.stats.requests += 1
        if self.config.latency_s:
            await asyncio.sleep(self.config.latency_s)
        fault = self._take_fault(request.path)
        if fault is not None:
            self._count(fault.status)
            return web.Response(status=fault.status, text="injected fault")
        root, cadence = request.match_info["root"], request.match_info["cadence"]
        symbol, interval, name = (
            request.match_info["symbol"],
            request.match_info["interval"],
            request.match_info["name"],
        )
        market = _ARCHIVE_ROOT.get(root)
        want_checksum = name.endswith(".CHECKSUM")
        zip_name = name.removesuffix(".CHECKSUM")
        stem = f"{symbol}-{interval}-"
        period = zip_name.removeprefix(stem).removesuffix(".zip")
        valid = (
            market is not None
            and zip_name.startswith(stem)
            and zip_name.endswith(".zip")
            and len(period) == (7 if cadence == "monthly" else 10)
            and interval in klines.INTERVALS
            and symbol in self.store.symbols(market, self.config)
        )
        found = None
        if valid and market is not None:
            period_end = _month_start(
                int(datetime.strptime(period[:7], "%Y-%m").replace(tzinfo=UTC).timestamp() * 1000),
                1,
            )
            if len(period) == 10:
                period_end = (
                    int(
                        datetime.strptime(period, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000
                    )
                    + 86_400_000
                )
            # Binance publishes a period only once it is over.
            if period_end <= self.config.now_ms():
                found = self.store.archive_csv(market, symbol, interval, period)
        if found is None:
            self._count(404)
            return web.Response(
                status=404, text=f"<Error><Code>NoSuchKey</Code><Key>{request.path}</Key></Error>"
            )
        csv_bytes, _real = found
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            info = zipfile.ZipInfo(
                zip_name.removesuffix(".zip") + ".csv", date_time=(2020, 1, 1, 0, 0, 0)
            )
            zf.writestr(info, csv_bytes, zipfile.ZIP_DEFLATED)
        data = buffer.getvalue()
        self._count(200)
        if want_checksum:
            digest = hashlib.sha256(data).hexdigest()
            if zip_name in self.config.corrupt_checksums:
                digest = hashlib.sha256(b"corrupt" + data).hexdigest()
            return web.Response(text=f"{digest}  {zip_name}\n")
        return web.Response(body=data, content_type="application/zip")

    async def _control(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self._lock:
            if "clock_ms" in body:
                self.config.clock_ms = body["clock_ms"]
            if "latency_s" in body:
                self.config.latency_s = float(body["latency_s"])
            for fault in body.get("faults", []):
                self.config.faults.append(Fault(**fault))
            self.config.corrupt_checksums |= set(body.get("corrupt_checksums", []))
            for market, names in body.get("extra_symbols", {}).items():
                self.config.extra_symbols.setdefault(market, []).extend(names)
            for market, limit in body.get("weight_limits", {}).items():
                self.config.weight_limits[market] = int(limit)
        return web.json_response({"ok": True})

    async def _stats(self, request: web.Request) -> web.Response:
        with self._lock:
            return web.json_response(
                {
                    "requests": self.stats.requests,
                    "kline_requests": self.stats.kline_requests,
                    "weight": self.stats.weight,
                    "status_counts": {str(k): v for k, v in self.stats.status_counts.items()},
                    "rate_limited": self.stats.rate_limited,
                }
            )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(r"/{prefix:api|fapi|dapi}/{version:v\d}/{endpoint}", self._api)
        app.router.add_get(
            r"/data/{root:spot|futures/um|futures/cm}/{cadence:monthly|daily}/klines/{symbol}/{interval}/{name}",
            self._archive,
        )
        app.router.add_post("/_standin/config", self._control)
        app.router.add_get("/_standin/stats", self._stats)
        return app


class StandinThread:
    """The stand-in served from a background thread: `with StandinThread() as s: s.url`."""

    def __init__(
        self, data_dir: Path | None = None, config: StandinConfig | None = None, port: int = 0
    ) -> None:
        self.server = BinanceStandin(data_dir, config)
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    @property
    def config(self) -> StandinConfig:
        return self.server.config

    @property
    def stats(self) -> StandinStats:
        return self.server.stats

    def start(self) -> StandinThread:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._runner = web.AppRunner(self.server.app(), access_log=None)
                loop.run_until_complete(self._runner.setup())
                site = web.TCPSite(self._runner, "127.0.0.1", self._port)
                loop.run_until_complete(site.start())
                sockets = getattr(site._server, "sockets", None) or []
                self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="binance-standin", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop and self._thread:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> StandinThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """The KLINEHOUSE_BINANCE_* settings pointing at this stand-in."""
        return {
            "KLINEHOUSE_BINANCE_REST_URL": self.url,
            "KLINEHOUSE_BINANCE_FUTURES_REST_URL": self.url,
            "KLINEHOUSE_BINANCE_COINM_REST_URL": self.url,
            "KLINEHOUSE_BINANCE_ARCHIVE_URL": self.url,
        }


def default_data_dir() -> Path | None:
    data = paths.shared_data_dir()
    return data if (data / "binance").is_dir() else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the local Binance REST/archive stand-in.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each request")
    args = parser.parse_args(argv)
    with StandinThread(
        default_data_dir(), StandinConfig(latency_s=args.latency), args.port
    ) as standin:
        for key, value in standin.env().items():
            print(f"export {key}={value}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
