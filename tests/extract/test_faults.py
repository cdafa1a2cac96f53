"""Issue 15.6: PostgreSQL and S3 restarting during an extract lose nothing and load nothing twice.

A private stack of its own (the session's stack, and its in-memory S3, stay untouched):
while `extract` works through its series, the project's own PostgreSQL is stopped and
started again, then the moto S3 server. The series meeting the outage is retried with
backoff; afterwards raw holds exactly the stand-in's candles (counts and sums of close).
A database that stays away fails each series by name, and the run still ends with a
summary.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from devstack.standin.binance_rest import StandinThread
from extract import extractor
from extract.extractor import Extractor, ExtractRequest
from extract.rest import RestSource

SERIES = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
START, END = datetime(2024, 11, 1, tzinfo=UTC), datetime(2024, 12, 1, tzinfo=UTC)


def _restart_postgres(home: Path, down: threading.Event, outage: float) -> None:
    from devstack.stack import manager, postgres

    state = manager.load_state(home)
    datadir, port = Path(state["postgres"]["datadir"]), int(state["postgres"]["port"])
    assert postgres.stop(datadir)
    down.set()
    time.sleep(outage)
    started = postgres.start(home, state["postgres"]["passwords"]["superuser"], port)
    assert started.port == port, "PostgreSQL came back on another port"


def _restart_s3(home: Path, bucket: str, down: threading.Event, outage: float) -> None:
    from devstack.stack import manager, s3

    state = manager.load_state(home)
    port = int(state["s3"]["port"])
    assert s3.stop(int(state["s3"]["pid"]))
    down.set()
    time.sleep(outage)
    started = s3.start(home, port)
    state["s3"]["pid"] = started.pid  # so that the stack's `down` stops this one
    manager._save_state(home, state)
    assert started.port == port, "S3 came back on another port"
    s3.ensure_bucket(f"http://127.0.0.1:{port}", bucket)  # moto keeps nothing in memory


def _expected(symbol: str) -> tuple[int, Decimal]:
    rows = RestSource("spot").klines_range(
        symbol, "1h", int(START.timestamp() * 1000), int(END.timestamp() * 1000) - 1
    )
    return len(rows), sum((Decimal(r[4]) for r in rows), Decimal(0))


def test_postgres_and_s3_restarts_during_extract_lose_nothing_and_double_nothing(
    binance_standin: StandinThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devstack.stack.private import private_stack
    from klinehouse import paths

    # Retries bounded, but enough to ride out a restart of moto (slow to import) on a busy
    # machine: 0.5 + 1 + 2 + 4 + 8 s at most.
    monkeypatch.setattr(extractor, "SERIES_ATTEMPTS", 6)
    with private_stack("fault-") as settings:
        home = paths.home()
        restarts: list[threading.Thread] = []
        lines: list[str] = []

        def log(line: str) -> None:
            lines.append(line)
            # After the first series loaded: PostgreSQL goes away; after the second: S3.
            if re.search(r": \d+ rows, \d+ new", line) and len(restarts) < 2:
                down = threading.Event()
                target = (
                    (lambda: _restart_postgres(home, down, 1.0))
                    if not restarts
                    else (lambda: _restart_s3(home, settings.lake_bucket, down, 1.0))
                )
                restarts.append(threading.Thread(target=target))
                restarts[-1].start()
                assert down.wait(60)  # the next series' load meets the outage

        request = ExtractRequest("spot", SERIES, ["1h"], start=START, end=END, source="rest")
        summary = Extractor(request, log=log, workers=4).run()
        for thread in restarts:
            thread.join(timeout=60)
        assert len(restarts) == 2 and not any(t.is_alive() for t in restarts)

        assert not summary.failures, summary.failures
        retried = [line for line in lines if "retrying" in line]
        print("\n".join(retried))
        assert len(retried) >= 2, lines  # both outages were met, and retried
        with psycopg.connect(settings.require_database_url()) as conn:
            stored = dict(
                (symbol, (count, total))
                for symbol, count, total in conn.execute(
                    "SELECT symbol, count(*), sum(close) FROM raw.binance_klines GROUP BY 1"
                ).fetchall()
            )
        assert stored == {symbol: _expected(symbol) for symbol in SERIES}
        assert summary.load.inserted == sum(count for count, _ in stored.values())


def test_a_database_that_stays_away_fails_each_series_and_the_run_ends(
    binance_standin: StandinThread,
    lake_settings: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(extractor, "SERIES_BACKOFF_SECONDS", 0.01)
    request = ExtractRequest(
        "spot", ["BTCUSDT", "ETHUSDT"], ["1h"], start=START, end=END, source="rest"
    )
    closed = "postgresql://nobody:secret@127.0.0.1:9/nothing"  # nothing listens on port 9
    summary = Extractor(request, url=closed).run()
    assert [f.split(":")[0] for f in summary.failures] == ["spot BTCUSDT 1h", "spot ETHUSDT 1h"]
    assert all(f"after {extractor.SERIES_ATTEMPTS} attempts" in f for f in summary.failures)
    assert all("secret" not in f for f in summary.failures)
