"""The quality-gate step of `make demo`: validate what the transform built, or stop."""

from __future__ import annotations

from datetime import datetime

from app.demo.output import say
from expectations.gate import validate
from klinehouse import db
from klinehouse.errors import KlinehouseError


def _replay_clock() -> datetime | None:
    """The demo replays recorded 2025 candles: freshness is judged as of their end."""
    with db.connect() as conn:
        row = conn.execute("SELECT max(close_time) FROM raw.binance_klines").fetchone()
    return row[0] if row else None


def step() -> None:
    as_of = _replay_clock()
    if as_of is not None:
        say(f"  recorded data: 'stale' and 'future' are judged as of {as_of.isoformat()}")
    report = validate(as_of=as_of)
    say("  " + report.summary().replace("\n", "\n  "))
    if not report.success:
        raise KlinehouseError(f"quality gate failed on {len(report.failures)} expectation(s)")
