"""REST extraction against the stand-in: pages, resume, forming candles, throttling, failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from devstack.standin.binance_rest import Fault, StandinThread
from extract.extractor import Extractor, ExtractRequest, plan_segments, run_extract
from extract.pacing import WeightPacer
from extract.rest import InvalidSymbol, RestError, RestSource
from klinehouse.settings import Settings

HOUR_MS = 3_600_000
T0 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)


def _rows(url: str, symbol: str) -> list[tuple[datetime, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT open_time, source FROM raw.binance_klines WHERE symbol = %s ORDER BY 1",
            (symbol,),
        ).fetchall()


@pytest.mark.parametrize(("candles", "pages"), [(1000, 1), (2000, 2), (2001, 3)])
def test_pagination_at_page_boundaries(
    binance_standin: StandinThread, candles: int, pages: int
) -> None:
    rest = RestSource("spot")
    rows = rest.klines_range("BNBUSDT", "1h", T0, T0 + (candles - 1) * HOUR_MS)
    opens = [r[0] for r in rows]
    assert opens == [T0 + i * HOUR_MS for i in range(candles)]  # no gap, no duplicate
    assert binance_standin.stats.kline_requests == pages


def test_range_ending_just_before_the_next_candle_costs_no_empty_request(
    binance_standin: StandinThread,
) -> None:
    # The extractor's chunks end at next_open - 1 ms: a full last page must end the loop.
    rows = RestSource("spot").klines_range("BNBUSDT", "1h", T0, T0 + 2000 * HOUR_MS - 1)
    assert len(rows) == 2000
    assert binance_standin.stats.kline_requests == 2


def test_futures_pages_use_the_cheapest_weight_per_row(binance_standin: StandinThread) -> None:
    rest = RestSource("usdm")
    rows = rest.klines_range("BTCUSDT", "1m", T0, T0 + 999 * 60_000)
    assert len(rows) == 1000
    # 499 rows cost weight 2 (250 rows per weight) where 1000 rows cost 5 (200).
    assert rest.page_size == 499
    assert binance_standin.stats.weight["usdm"] == 3 * 2


def test_extract_resume_and_forming_candle(
    binance_standin: StandinThread, warehouse: Settings
) -> None:
    # The server clock sits inside the real series: 2025-05-31 12:30, the 12:00 bar is forming.
    binance_standin.config.clock_ms = int(
        datetime(2025, 5, 31, 12, 30, tzinfo=UTC).timestamp() * 1000
    )
    first = run_extract(
        ExtractRequest(
            "spot", ["BTCUSDT"], ["1h"], start=datetime(2025, 5, 30, tzinfo=UTC), source="rest"
        )
    )
    assert not first.failures
    assert first.dropped_forming == 1
    assert first.load.inserted == 24 + 12
    stored = _rows(warehouse.database_url, "BTCUSDT")
    assert stored[-1][0] == datetime(2025, 5, 31, 11, tzinfo=UTC)
    assert {s for _t, s in stored} == {"rest"}
    # Two hours later an incremental run (no --start) fetches exactly the closed new bars.
    binance_standin.config.clock_ms += 2 * HOUR_MS
    requests_before = binance_standin.stats.kline_requests
    second = run_extract(ExtractRequest("spot", ["BTCUSDT"], ["1h"], source="rest"))
    assert second.load.inserted == 2 and second.load.unchanged == 0
    assert second.dropped_forming == 1
    assert binance_standin.stats.kline_requests - requests_before == 1
    assert _rows(warehouse.database_url, "BTCUSDT")[-1][0] == datetime(2025, 5, 31, 13, tzinfo=UTC)


def test_auto_uses_archives_for_whole_months_and_rest_for_the_tail(
    binance_standin: StandinThread, warehouse: Settings, shared_data: Path
) -> None:
    binance_standin.config.clock_ms = int(datetime(2025, 5, 20, tzinfo=UTC).timestamp() * 1000)
    summary = run_extract(
        ExtractRequest("spot", ["ETHUSDT"], ["1h"], start=datetime(2024, 12, 1, tzinfo=UTC))
    )
    assert not summary.failures
    stored = _rows(warehouse.database_url, "ETHUSDT")
    by_source = {src: [t for t, s in stored if s == src] for src in {s for _t, s in stored}}
    # Dec..Apr from the archive (ms then µs files), May 1-19 from REST.
    assert min(by_source["archive"]) == datetime(2024, 12, 1, tzinfo=UTC)
    assert max(by_source["archive"]) == datetime(2025, 4, 30, 23, tzinfo=UTC)
    assert min(by_source["rest"]) == datetime(2025, 5, 1, tzinfo=UTC)
    assert max(by_source["rest"]) == datetime(2025, 5, 19, 23, tzinfo=UTC)
    archive_rows = sum(
        len((shared_data / f"binance/spot-archive/ETHUSDT-1h-{m}.csv").read_text().splitlines())
        for m in ("2024-12", "2025-01", "2025-02", "2025-03", "2025-04")
    )
    assert len(by_source["archive"]) == archive_rows
    assert len(stored) == archive_rows + 19 * 24


def test_checksum_mismatch_rejects_that_archive_and_others_complete(
    binance_standin: StandinThread, warehouse: Settings
) -> None:
    binance_standin.config.corrupt_checksums.add("BTCUSDT-1h-2025-02.zip")
    summary = run_extract(
        ExtractRequest(
            "spot", ["BTCUSDT", "ETHUSDT"], ["1h"],
            start=datetime(2025, 1, 1, tzinfo=UTC), end=datetime(2025, 3, 1, tzinfo=UTC),
            source="archive",
        )
    )  # fmt: skip
    assert len(summary.failures) == 1
    assert "BTCUSDT-1h-2025-02.zip" in summary.failures[0]
    assert "CHECKSUM" in summary.failures[0]
    assert _rows(warehouse.database_url, "BTCUSDT") == []  # nothing of the failed series
    assert len(_rows(warehouse.database_url, "ETHUSDT")) == (31 + 28) * 24


def test_429_waits_retry_after_then_resumes(
    binance_standin: StandinThread, warehouse: Settings
) -> None:
    binance_standin.config.faults.append(Fault(429, 1, path_contains="/klines", retry_after=1))
    rest = RestSource("spot")
    request = ExtractRequest(
        "spot", ["BNBUSDT"], ["1h"], start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2024, 1, 4, tzinfo=UTC), source="rest",
    )  # fmt: skip
    summary = Extractor(request, rest=rest).run()
    assert summary.throttled == 1 and not summary.failures
    assert summary.load.inserted == 72
    # The pacer held every worker for the server's Retry-After.
    assert rest.pacer.paused_seconds >= 1.0
    assert binance_standin.stats.status_counts[429] == 1


def test_418_ban_waits_retry_after_too(binance_standin: StandinThread) -> None:
    binance_standin.config.faults.append(Fault(418, 1, path_contains="/klines", retry_after=1))
    rest = RestSource("spot")
    rows = rest.klines_range("BNBUSDT", "1h", T0, T0 + 9 * HOUR_MS)
    assert len(rows) == 10
    assert rest.counters.throttled == 1 and rest.pacer.paused_seconds >= 1.0


def test_timeouts_are_retried_then_reported(binance_standin: StandinThread) -> None:
    binance_standin.config.latency_s = 0.5
    rest = RestSource("spot", timeout=0.1, backoff_base=0.01, max_attempts=2)
    with pytest.raises(RestError, match=r"gave up after 2 attempts \(ReadTimeout\)"):
        rest.klines_page("BNBUSDT", "1h", T0, T0 + HOUR_MS)
    assert rest.counters.retries == 1


def test_pacer_waits_retry_after() -> None:
    now = [0.0]
    pacer = WeightPacer(6000, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    pacer.pause(3.0)
    pacer.acquire(2)
    assert now[0] >= 3.0 and pacer.paused_seconds == 3.0


def test_pacer_never_exceeds_the_minute_budget() -> None:
    now = [0.0]
    pacer = WeightPacer(600, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    spent_by_minute: dict[int, int] = {}
    while now[0] < 180:
        pacer.acquire(2)
        minute = int(now[0] // 60)
        spent_by_minute[minute] = spent_by_minute.get(minute, 0) + 2
    assert max(spent_by_minute.values()) <= 600
    assert min(spent_by_minute[m] for m in (1, 2)) >= 0.9 * 600  # and uses the budget


def test_5xx_storm_is_retried_with_bounded_backoff(
    binance_standin: StandinThread, warehouse: Settings
) -> None:
    binance_standin.config.faults.append(Fault(503, 4, path_contains="/klines"))
    rest = RestSource("spot", backoff_base=0.01)
    rows = rest.klines_range("BNBUSDT", "1h", T0, T0 + 9 * HOUR_MS)
    assert len(rows) == 10 and rest.counters.retries == 4
    binance_standin.config.faults.append(Fault(500, 100, path_contains="/klines"))
    bounded = RestSource("spot", backoff_base=0.01, max_attempts=3)
    with pytest.raises(
        RestError, match=r"BNBUSDT 1h klines: gave up after 3 attempts \(HTTP 500\)"
    ):
        bounded.klines_range("BNBUSDT", "1h", T0, T0 + 9 * HOUR_MS)


def test_invalid_symbol_among_valid_ones(
    binance_standin: StandinThread, warehouse: Settings
) -> None:
    with pytest.raises(InvalidSymbol, match="NOPEUSDT"):
        RestSource("spot").klines_page("NOPEUSDT", "1h", T0, T0 + HOUR_MS)
    summary = run_extract(
        ExtractRequest("spot", ["BNBUSDT", "NOPEUSDT", "XRPUSDT"], ["4h"],
                       start=datetime(2024, 1, 1, tzinfo=UTC), end=datetime(2024, 1, 2, tzinfo=UTC),
                       source="rest"),
    )  # fmt: skip
    assert len(summary.failures) == 1 and "NOPEUSDT" in summary.failures[0]
    assert "invalid symbol" in summary.failures[0]
    # --end is exclusive: 00:00 .. 20:00, not the bar opening at 2024-01-02 00:00.
    assert len(_rows(warehouse.database_url, "BNBUSDT")) == 6
    assert len(_rows(warehouse.database_url, "XRPUSDT")) == 6


def test_symbol_discovery_from_exchange_info(
    binance_standin: StandinThread, shared_data: Path
) -> None:
    info = json.loads((shared_data / "binance/api/exchange_info_2021-10-12.json").read_text())
    expected = sorted(
        s["symbol"]
        for s in info["symbols"]
        if s["quoteAsset"] == "USDT" and s["status"] == "TRADING"
    )
    assert RestSource("spot").exchange_symbols(quote="USDT", status="TRADING") == expected


def test_plan_segments() -> None:
    def ms(*args: int) -> int:
        return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)

    now = ms(2025, 5, 20)
    assert plan_segments(ms(2025, 2, 10), now - 1, now, "auto") == [
        ("rest", ms(2025, 2, 10), ms(2025, 3, 1) - 1),
        ("month", ms(2025, 3, 1), ms(2025, 4, 1) - 1),
        ("month", ms(2025, 4, 1), ms(2025, 5, 1) - 1),
        ("rest", ms(2025, 5, 1), now - 1),
    ]
    archive_only = plan_segments(ms(2025, 4, 1), ms(2025, 5, 2, 12), now, "archive")
    assert archive_only[0] == ("month", ms(2025, 4, 1), ms(2025, 5, 1) - 1)
    assert archive_only[1:] == [
        ("day", ms(2025, 5, 1), ms(2025, 5, 2) - 1),
        ("day", ms(2025, 5, 2), ms(2025, 5, 2, 12)),
    ]
    assert plan_segments(ms(2025, 1, 1), now - 1, now, "rest") == [
        ("rest", ms(2025, 1, 1), now - 1)
    ]
    assert timedelta(milliseconds=1)  # keep the import honest for the month arithmetic above
