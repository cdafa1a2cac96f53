"""The ingester against the websocket stand-in, real PostgreSQL and the S3 lake."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from devstack.standin.binance_ws import (
    Scenario,
    StandinThread,
    archive_candles,
    generated_timeline,
    recorded_timeline,
)
from extract.lake_store import prefix_object_keys, read_objects
from extract.stream.ingester import StreamIngester, StreamOptions, StreamStats
from klinehouse.settings import Settings, get_settings

WS_URL_VARS = {
    "spot": "KLINEHOUSE_BINANCE_WS_URL",
    "usdm": "KLINEHOUSE_BINANCE_FUTURES_WS_URL",
    "coinm": "KLINEHOUSE_BINANCE_COINM_WS_URL",
}


@pytest.fixture
def ws_standin(monkeypatch: pytest.MonkeyPatch) -> Callable[[Scenario], object]:
    """A context manager factory: the stand-in playing `scenario`, its URL in the settings."""

    @contextmanager
    def start(scenario: Scenario, market: str = "spot") -> Iterator[StandinThread]:
        with StandinThread(scenario) as standin:
            # Only the market's own URL leads to the stand-in: the others refuse connections.
            for name in WS_URL_VARS.values():
                monkeypatch.setenv(name, "ws://127.0.0.1:9")
            monkeypatch.setenv(WS_URL_VARS[market], standin.url)
            get_settings(fresh=True)
            yield standin

    return start


def run_until_played(
    options: StreamOptions, standin: StandinThread, *, settle: float = 0.5, timeout: float = 60
) -> tuple[StreamStats, int]:
    """Run the ingester until the stand-in has played its timeline.

    Returns the stats and how many candles were committed before stop() was asked.
    """

    async def main() -> tuple[StreamStats, int]:
        ingester = StreamIngester(options, settings=get_settings(fresh=True))
        task = asyncio.create_task(ingester.run())
        loop = asyncio.get_running_loop()
        played = await loop.run_in_executor(None, standin.wait_finished, timeout)
        assert played, "the stand-in did not finish its timeline"
        await asyncio.sleep(settle)  # let the last frames cross the socket
        committed_before_stop = ingester.stats.committed
        ingester.stop()
        return await task, committed_before_stop

    return asyncio.run(main())


COLUMNS = "symbol, interval, (extract(epoch FROM open_time) * 1000)::bigint, open, high, low, close, volume, quote_volume, trades, taker_buy_base_volume, taker_buy_quote_volume, source"


def stored(url: str) -> set[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return set(conn.execute(f"SELECT {COLUMNS} FROM raw.binance_klines").fetchall())


def expected_rows(
    events: list[dict[str, object]], source: str = "stream"
) -> set[tuple[object, ...]]:
    rows = set()
    for data in events:
        k = data["k"]
        assert isinstance(k, dict)
        rows.add(
            (
                k["s"],
                k["i"],
                k["t"],
                *(Decimal(k[f]) for f in "ohlcvq"),
                k["n"],
                Decimal(k["V"]),
                Decimal(k["Q"]),
                source,
            )
        )
    return rows


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_recorded_stream_stores_exactly_the_closed_candles(
    warehouse: Settings, ws_standin, shared_data: Path, market: str
) -> None:
    ticks = recorded_timeline(shared_data / "binance/api/ws_kline_events_1m.jsonl")
    events = [data for tick in ticks for _, data in tick]
    closing = [d for d in events if d["k"]["x"]]  # type: ignore[index]
    forming = [d for d in events if not d["k"]["x"]]  # type: ignore[index]
    assert len(closing) == 2 and len(forming) == 15  # the recording as documented

    with psycopg.connect(warehouse.database_url, autocommit=True) as listener:
        listener.execute("LISTEN klinehouse_candles")
        with ws_standin(Scenario(ticks), market) as standin:
            options = StreamOptions(
                market=market,
                symbols=("FTMUSDT", "SXPBTC", "XMRBTC"),
                intervals=("1m",),
                flush_rows=1000,
                flush_seconds=0.2,
                lake_seconds=3600,
            )
            stats, before_stop = run_until_played(options, standin)
        notes = [json.loads(n.payload) for n in listener.notifies(timeout=1, stop_after=10)]

    rows = stored(warehouse.database_url)
    assert rows == expected_rows(closing)
    # No forming update is stored (the last one before the close may equal the closed candle).
    assert not rows & (expected_rows(forming) - expected_rows(closing))
    assert stats.closed == 2 and stats.forming == 15 and not stats.skipped
    assert before_stop == 2  # committed by the age limit (0.2 s), not only on shutdown
    with psycopg.connect(warehouse.database_url) as conn:
        markets = conn.execute("SELECT DISTINCT market FROM raw.binance_klines").fetchall()
    assert markets == [(market,)]
    assert sorted(notes, key=lambda n: n["symbol"]) == [
        {
            "market": market,
            "symbol": "FTMUSDT",
            "interval": "1m",
            "open_time": "2021-08-14T14:46:00Z",
        },
        {
            "market": market,
            "symbol": "SXPBTC",
            "interval": "1m",
            "open_time": "2021-08-14T14:46:00Z",
        },
    ]
    # The lake receives the same candles (written on shutdown, the hour not being complete).
    lake = read_objects(prefix_object_keys(f"klines/market={market}", warehouse), warehouse)
    assert sorted(lake["symbol"].to_list()) == ["FTMUSDT", "SXPBTC"]
    assert set(lake["close"].to_list()) == {Decimal(d["k"]["c"]) for d in closing}  # type: ignore[index]


SEEDED = 5  # candles stored before the ingester starts
LIVE_FROM = 10  # the stream starts here: 5..9 are missing on the first connect
CANDLES = 40
DROP_AT, MISSED = 14, 6  # relative tick of the cut, ticks that pass while disconnected


def test_disconnects_are_backfilled_over_rest_exactly_once(
    warehouse: Settings, ws_standin, binance_standin, shared_data: Path
) -> None:
    from extract.archive import read_archive_csv
    from extract.load import load_frame

    archive = shared_data / "binance/spot-archive"
    truth = {
        s: read_archive_csv(archive / f"{s}-1h-2024-11.csv", market="spot", symbol=s, interval="1h")
        .sort("open_time")
        .head(CANDLES)
        for s in ("BTCUSDT", "ETHUSDT")
    }
    for frame in truth.values():
        load_frame(frame.head(SEEDED), url=warehouse.database_url)
    series = [
        archive_candles(archive / f"{s}-1h-2024-11.csv", symbol=s, interval="1h")[LIVE_FROM:CANDLES]
        for s in truth
    ]
    scenario = Scenario(
        generated_timeline(series, updates=3), drops={DROP_AT: MISSED}, garbage={2, 25}
    )
    with ws_standin(scenario) as standin:
        options = StreamOptions(
            market="spot",
            symbols=("BTCUSDT", "ETHUSDT"),
            intervals=("1h",),
            flush_rows=7,
            flush_seconds=0.1,
            reconnect_initial=0.05,
        )
        stats, _ = run_until_played(options, standin, settle=1.5)
        assert standin.server.connections == 2

    with psycopg.connect(warehouse.database_url) as conn:
        got = conn.execute(
            f"SELECT {COLUMNS.replace(', source', '')}, source FROM raw.binance_klines"
        ).fetchall()
    by_source: dict[str, set[int]] = {}
    for row in got:
        by_source.setdefault(row[-1], set()).add(row[2] - truth_start(truth))
    expected = {
        (r["symbol"], r["interval"], int(r["open_time"].timestamp() * 1000), r["open"], r["high"],
         r["low"], r["close"], r["volume"], r["quote_volume"], r["trades"],
         r["taker_buy_base_volume"], r["taker_buy_quote_volume"])
        for frame in truth.values() for r in frame.iter_rows(named=True)
    }  # fmt: skip
    assert {row[:-1] for row in got} == expected  # nothing lost, nothing twice, exact values
    assert len(got) == 2 * CANDLES
    hour = 3_600_000
    missed = {LIVE_FROM + DROP_AT + i for i in range(MISSED + 1)}  # the cut tick and those after
    assert by_source["rest"] == {i * hour for i in [*range(SEEDED, LIVE_FROM), *missed]}
    assert by_source["stream"] == {i * hour for i in range(LIVE_FROM, CANDLES) if i not in missed}
    assert stats.backfilled == 2 * (LIVE_FROM - SEEDED + len(missed))
    assert stats.skipped == {"not_json": 2, "malformed": 2}
    assert stats.connects == 2 and not stats.unfilled_gaps
    assert binance_standin.stats.kline_requests >= 4


def truth_start(truth: dict[str, object]) -> int:
    frame = next(iter(truth.values()))
    return int(frame["open_time"][0].timestamp() * 1000)  # type: ignore[index]


def test_candles_that_cannot_be_committed_on_shutdown_are_saved_to_a_file(
    warehouse: Settings, ws_standin, shared_data: Path
) -> None:
    import polars as pl

    from klinehouse.errors import KlinehouseError

    ticks = recorded_timeline(shared_data / "binance/api/ws_kline_events_1m.jsonl")
    closing = [d for tick in ticks for _, d in tick if d["k"]["x"]]  # type: ignore[index]
    options = StreamOptions(
        market="spot", symbols=("FTMUSDT", "SXPBTC", "XMRBTC"), intervals=("1h", "1m"),
        flush_rows=1000, flush_seconds=3600, lake=False, shutdown_attempts=1,
    )  # fmt: skip
    url = warehouse.database_url
    admin = url.rsplit("/", 1)[0] + "/postgres"

    async def main(standin: StandinThread) -> str:
        ingester = StreamIngester(options, settings=get_settings(fresh=True))
        task = asyncio.create_task(ingester.run())
        played = await asyncio.get_running_loop().run_in_executor(None, standin.wait_finished, 30)
        assert played
        await asyncio.sleep(0.5)
        assert ingester.stats.closed == 2 and ingester.stats.committed == 0
        with psycopg.connect(admin, autocommit=True) as conn:  # the warehouse goes away
            conn.execute(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        ingester.stop()
        with pytest.raises(KlinehouseError, match="could not commit 2 received candles") as info:
            await task
        return str(info.value)

    with ws_standin(Scenario(ticks)) as standin:
        message = asyncio.run(main(standin))
    spilled = Path(message.split("saved in ")[1].split(" (kline schema")[0])
    try:
        df = pl.read_parquet(spilled)
        rows = {
            (r["symbol"], r["interval"], int(r["open_time"].timestamp() * 1000), r["open"],
             r["high"], r["low"], r["close"], r["volume"], r["quote_volume"], r["trades"],
             r["taker_buy_base_volume"], r["taker_buy_quote_volume"], r["source"])
            for r in df.iter_rows(named=True)
        }  # fmt: skip
        assert rows == expected_rows(closing)
    finally:
        spilled.unlink()
