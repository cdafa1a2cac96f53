"""The series catalogue serving.series follows raw in the loader's own transactions
(issue 14: the service lists series and tells "no bars yet" apart by key)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import psycopg

from extract.load import load_frame

from ..marts import klines

FIRST = datetime(2024, 3, 1, tzinfo=UTC)


def _frame(symbol: str, first: datetime, bars: int) -> pl.DataFrame:
    times = pl.datetime_range(
        first, first + timedelta(hours=bars - 1), interval="1h", eager=True, time_zone="UTC"
    )
    price = pl.lit(100).cast(pl.Decimal(38, 8))
    return klines(
        symbol,
        times,
        open=price,
        high=price + 1,
        low=price - 1,
        close=price,
        volume=pl.lit(10),
        trades=pl.lit(1),
        taker_buy_base_volume=pl.lit(5),
    )


def _catalogue(url: str) -> dict[str, tuple[datetime, datetime, datetime]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT symbol, first_open_time, last_open_time, updated_at FROM serving.series"
            " WHERE market = 'spot' AND interval = '1h'"
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_loads_extend_the_catalogue_and_a_reload_touches_nothing(database_url: str) -> None:
    load_frame(_frame("BTCUSDT", FIRST, 10), url=database_url)  # the direct-COPY path
    load_frame(_frame("ETHUSDT", FIRST, 3), url=database_url)
    first = _catalogue(database_url)
    assert {s: v[:2] for s, v in first.items()} == {
        "BTCUSDT": (FIRST, FIRST + timedelta(hours=9)),
        "ETHUSDT": (FIRST, FIRST + timedelta(hours=2)),
    }
    # overlapping: the staged upsert path, one bar earlier and two later
    load_frame(_frame("BTCUSDT", FIRST - timedelta(hours=1), 13), url=database_url)
    load_frame(_frame("ETHUSDT", FIRST, 3), url=database_url)  # unchanged rows
    after = _catalogue(database_url)
    assert after["BTCUSDT"][:2] == (FIRST - timedelta(hours=1), FIRST + timedelta(hours=11))
    assert after["ETHUSDT"] == first["ETHUSDT"]  # not even its updated_at moved


def test_a_rolled_back_load_leaves_the_catalogue_as_it_was(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        with conn.transaction(force_rollback=True):  # the ingester's commit, failing after
            load_frame(_frame("SOLUSDT", FIRST, 5), conn=conn)
            seen = conn.execute("SELECT count(*) FROM serving.series").fetchone()
        assert seen == (1,)  # inside the transaction the catalogue had it
    assert _catalogue(database_url) == {}
