"""The demo's extract step: BTCUSDT and ETHUSDT 1h into the lake and raw, then the summary.

From Binance when its REST API answers; otherwise from the local stand-in serving
the real archives in ../shared/data (or seeded synthetic candles without them).
The first run backfills from 2024-11-01 (archives for whole months, REST for the
tail); later runs resume after the newest stored candle.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.demo.output import say

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
FIRST_START = datetime(2024, 11, 1, tzinfo=UTC)


def step() -> None:
    from devstack.standin.fallback import binance_or_standin
    from extract.extractor import Extractor, ExtractRequest, stored_latest

    with binance_or_standin(lambda line: say(f"  {line}")):
        resume = all(stored_latest("spot", s, "1h") is not None for s in SYMBOLS)
        request = ExtractRequest(
            "spot", SYMBOLS, ["1h"], start=None if resume else FIRST_START, source="auto"
        )
        summary = Extractor(request, log=lambda line: say(f"  {line}")).run()
        for line in summary.lines():
            say(line)
        if summary.failures:
            raise RuntimeError("; ".join(summary.failures))
