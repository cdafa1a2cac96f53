"""The one place that lists what the pipeline orchestrates.

The DAGs map over `series()`; schedules and retry policy are read here too.
Everything has a default and an environment override (read through
`klinehouse.settings`, afresh on each call), so that a deployment changes what
it pulls without editing a DAG file:

| variable | default | meaning |
|---|---|---|
| `KLINEHOUSE_PIPELINE_SERIES` | `spot:BTCUSDT:1h,spot:ETHUSDT:1h` | `market:SYMBOL:interval`, comma-separated |
| `KLINEHOUSE_EXTRACT_SCHEDULE` | `0 * * * *` (hourly) | cron of `klines_extract_load`; each run extracts its data interval |
| `KLINEHOUSE_TRAINING_SCHEDULE` | `0 3 * * 1` (Mondays 03:00 UTC) | cron of `model_training` (also triggered on demand) |
| `KLINEHOUSE_TASK_RETRIES` | `3` | retries of the I/O tasks (exponential backoff from 30 s, at most 10 min) |

This module imports nothing heavy: DAG files read it at parse time. Markets and
intervals are checked against `klinehouse.klines` when a task runs (`Series.validate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from klinehouse.settings import Settings

DEFAULT_SERIES = "spot:BTCUSDT:1h,spot:ETHUSDT:1h"
DEFAULT_EXTRACT_SCHEDULE = "0 * * * *"
DEFAULT_TRAINING_SCHEDULE = "0 3 * * 1"
OWNER = "klinehouse"
RETRY_DELAY = timedelta(seconds=30)
MAX_RETRY_DELAY = timedelta(minutes=10)


@dataclass(frozen=True)
class Series:
    """One (market, symbol, interval) kline series the pipeline keeps up to date."""

    market: str
    symbol: str
    interval: str

    @property
    def label(self) -> str:
        return f"{self.market}:{self.symbol}:{self.interval}"

    def validate(self) -> Series:
        """Check market and interval against `klinehouse.klines` (imports polars: run time only)."""
        from klinehouse.klines import check_market, interval_length

        check_market(self.market)
        interval_length(self.interval)
        return self

    def as_dict(self) -> dict[str, str]:
        """The XCom/expand form (plain JSON)."""
        return {"market": self.market, "symbol": self.symbol, "interval": self.interval}


def parse_series(spec: str) -> tuple[Series, ...]:
    """`"spot:BTCUSDT:1h,usdm:ETHUSDT:4h"` -> Series; ValueError names the bad entry."""
    out: list[Series] = []
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) != 3 or not all(parts):
            raise ValueError(
                f"bad series {entry!r} in KLINEHOUSE_PIPELINE_SERIES: expected market:SYMBOL:interval"
            )
        market, symbol, interval = parts
        out.append(Series(market.lower(), symbol.upper(), interval))
    if not out:
        raise ValueError("KLINEHOUSE_PIPELINE_SERIES lists no series")
    if len(set(out)) != len(out):
        raise ValueError(f"KLINEHOUSE_PIPELINE_SERIES lists a series twice: {spec!r}")
    return tuple(out)


def _settings() -> Settings:
    from klinehouse.settings import get_settings  # pydantic: not at DAG-file import

    return get_settings(fresh=True)


def series() -> tuple[Series, ...]:
    """The configured series (`KLINEHOUSE_PIPELINE_SERIES`, else the default)."""
    return parse_series(_settings().pipeline_series or DEFAULT_SERIES)


def training_specs() -> list[dict[str, object]]:
    """What model_training trains, one mapped task each: every configured (market,
    interval) pair with all its symbols, in the order first configured.

    The registry keeps a champion per pair, so each pair is trained on its own."""
    pairs: dict[tuple[str, str], list[str]] = {}
    for s in series():
        pairs.setdefault((s.market, s.interval), []).append(s.symbol)
    return [
        {"market": market, "interval": interval, "symbols": sorted(set(symbols))}
        for (market, interval), symbols in pairs.items()
    ]


def extract_schedule() -> str:
    return _settings().extract_schedule or DEFAULT_EXTRACT_SCHEDULE


def training_schedule() -> str:
    return _settings().training_schedule or DEFAULT_TRAINING_SCHEDULE


def task_retries() -> int:
    raw = _settings().task_retries
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"KLINEHOUSE_TASK_RETRIES must be an integer, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"KLINEHOUSE_TASK_RETRIES must be >= 0, got {value}")
    return value


def default_args() -> dict[str, object]:
    """Owner and retry policy shared by every klinehouse DAG."""
    return {
        "owner": OWNER,
        "retries": task_retries(),
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": MAX_RETRY_DELAY,
    }
