"""The dashboard's queries on a dbt-built warehouse: by key and range, downsampled in SQL."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from dashboard import queries
from dashboard.queries import SeriesKey

BTC = SeriesKey("spot", "BTCUSDT", "1h")
MARCH = (datetime(2023, 3, 1, tzinfo=UTC), datetime(2023, 4, 1, tzinfo=UTC))


@dataclass(frozen=True)
class Scan:
    node: str
    relation: str  # schema.name
    index_cond: str
    under_limit: bool


def _scans(plan: Any, under_limit: bool = False) -> list[Scan]:
    """Every scan of a table in an EXPLAIN (FORMAT JSON, VERBOSE) plan."""
    found = []
    if isinstance(plan, dict):
        under_limit = under_limit or plan.get("Node Type") == "Limit"
        if "Relation Name" in plan:
            cond = plan.get("Index Cond", "")
            found.append(
                Scan(
                    plan["Node Type"],
                    f"{plan['Schema']}.{plan['Relation Name']}",
                    cond,
                    under_limit,
                )
            )
        for value in plan.values():
            found += _scans(value, under_limit)
    elif isinstance(plan, list):
        for value in plan:
            found += _scans(value, under_limit)
    return found


def test_every_callback_query_reads_by_key(warehouse: str) -> None:
    """With sequential scans priced out (enable_seqscan off), PostgreSQL still picks one only
    where no index can answer, and a full index scan shows no key in its Index Cond. Every scan
    of raw or marts must be an index scan bounded by the series key (symbol = …) or a probe of
    one whole key (the labels of each drawn feature row), except the
    series list, a skip scan of one index entry per series (each under a LIMIT). (On these small
    tables the planner would choose Seq Scans on cost alone: hence the setting.)"""
    win = queries.window(BTC, *MARCH, max_bars=100)
    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        for name, (statement, params) in queries.statements(BTC, win).items():
            plan = conn.execute("EXPLAIN (FORMAT JSON, VERBOSE) " + statement, params).fetchone()[0]
            scans = [
                s
                for s in _scans(json.loads(plan) if isinstance(plan, str) else plan)
                if s.relation.split(".")[0] in {"raw", "marts"}
            ]
            assert scans, f"{name}: no scan of raw or marts in the plan?"
            for scan in scans:
                assert scan.node in {"Index Scan", "Index Only Scan"}, (name, scan)
                if name == "series":
                    assert scan.under_limit, (name, scan)
                else:
                    cond = scan.index_cond
                    by_key = ".symbol = 'BTCUSDT'" in cond
                    probe = ".symbol = " in cond and ".open_time = " in cond  # one key, per row
                    assert by_key or probe, (name, scan)


def test_a_long_range_is_downsampled_in_sql_to_first_max_min_last_sum(warehouse: str) -> None:
    win = queries.window(BTC, *MARCH, max_bars=100)
    assert win.bucket == timedelta(hours=8)  # 744 hours / 100 → 8-hour buckets
    with psycopg.connect(warehouse) as conn:
        got = queries.bars(conn, BTC, win)
        rows = conn.execute(
            "SELECT open_time, open::float8, high::float8, low::float8, close::float8,"
            " volume::float8 FROM marts.candles WHERE market = 'spot' AND symbol = 'BTCUSDT'"
            " AND interval = '1h' AND open_time >= %s AND open_time < %s ORDER BY open_time",
            MARCH,
        ).fetchall()
    assert len(got) <= 100
    buckets: dict[datetime, list[tuple[Any, ...]]] = {}
    for row in rows:
        start = queries.ORIGIN + (row[0] - queries.ORIGIN) // win.bucket * win.bucket
        buckets.setdefault(start, []).append(row)
    assert [b.open_time for b in got] == sorted(buckets)
    for bar in got:
        part = buckets[bar.open_time]
        assert bar.bars == len(part)
        assert bar.open == part[0][1] and bar.close == part[-1][4]
        assert bar.high == max(r[2] for r in part) and bar.low == min(r[3] for r in part)
        assert bar.volume == pytest.approx(sum(r[5] for r in part))
    # the outage on 2023-03-24 13:00 leaves its bucket one bar short
    assert [b.bars for b in got if b.bars != 8] == [7]


def test_gaps_flags_and_features_of_a_window(warehouse: str) -> None:
    day = (datetime(2023, 3, 24, tzinfo=UTC), datetime(2023, 3, 25, tzinfo=UTC))
    win = queries.window(BTC, *day)
    with psycopg.connect(warehouse) as conn:
        gaps = queries.gaps(conn, BTC, win)
        bars = queries.bars(conn, BTC, win)
        rows = queries.features(conn, BTC, win)
        outside = queries.gaps(
            conn, BTC, queries.window(BTC, *MARCH[:1], MARCH[0] + timedelta(days=20))
        )
    assert [(g.start.hour, g.end.hour, g.missing_bars) for g in gaps] == [(13, 13, 1)]
    assert outside == []
    assert [b.open_time.hour for b in bars if b.zero_volume] == [12]
    assert len(bars) == 23 and not any(b.resampled for b in bars)
    assert [r.open_time for r in rows] == [b.open_time for b in bars]
    assert all(r.values["rsi_14"] is None or 0 <= r.values["rsi_14"] <= 100 for r in rows)


def test_series_and_bounds_by_key(warehouse: str) -> None:
    with psycopg.connect(warehouse) as conn:
        keys = queries.series(conn)
        span = queries.bounds(conn, BTC)
        none = queries.bounds(conn, SeriesKey("spot", "NOPE", "1h"))
    assert keys[:2] == [BTC, SeriesKey("spot", "ETHUSDT", "1h")]
    assert {k.interval for k in keys[2:]} == {"1m", "5m", "15m", "1h", "4h", "1d"}
    assert {k.symbol for k in keys[2:]} == {"SYNUSDT"}
    assert span == (MARCH[0], MARCH[1] - timedelta(hours=1))
    assert none is None


def test_window_gaps_follow_marts_candle_gaps(warehouse: str) -> None:
    """The dashboard's by-range copy of the gap rule gives marts.candle_gaps' rows, also for a
    window that starts or ends inside the gap."""
    with psycopg.connect(warehouse) as conn:
        conn.execute(
            "DELETE FROM marts.candles WHERE symbol = 'ETHUSDT'"
            " AND open_time BETWEEN '2024-11-10 05:00+00' AND '2024-11-10 08:00+00'"
        )
        expected = conn.execute(
            "SELECT gap_start, gap_end, missing_bars FROM marts.candle_gaps"
            " WHERE symbol = 'BTCUSDT' ORDER BY gap_start"
        ).fetchall()
        assert len(expected) == 1
        got = queries.gaps(conn, BTC, queries.window(BTC, *MARCH))
        inside = queries.gaps(
            conn,
            BTC,
            queries.window(BTC, expected[0][0], expected[0][0] + timedelta(hours=5)),
        )
        eth = SeriesKey("spot", "ETHUSDT", "1h")
        cut = datetime(2024, 11, 10, 6, 30, tzinfo=UTC)
        before = queries.gaps(conn, eth, queries.window(eth, cut - timedelta(days=1), cut))
        after = queries.gaps(conn, eth, queries.window(eth, cut, cut + timedelta(days=1)))
        conn.rollback()
    assert [(g.start, g.end, g.missing_bars) for g in got] == expected
    assert [(g.start, g.end, g.missing_bars) for g in inside] == expected
    four = (datetime(2024, 11, 10, 5, tzinfo=UTC), datetime(2024, 11, 10, 8, tzinfo=UTC), 4)
    assert [(g.start, g.end, g.missing_bars) for g in before] == [four]
    assert [(g.start, g.end, g.missing_bars) for g in after] == [four]


def _buckets(rows: list[tuple[Any, ...]], bucket: timedelta) -> dict[datetime, tuple[Any, ...]]:
    """(open, high, low, close, volume) of each bucket of (open_time, o, h, l, c, v) rows."""
    parts: dict[datetime, list[tuple[Any, ...]]] = {}
    for row in rows:
        parts.setdefault(queries.ORIGIN + (row[0] - queries.ORIGIN) // bucket * bucket, []).append(
            row
        )
    return {
        t: (p[0][1], max(r[2] for r in p), min(r[3] for r in p), p[-1][4], sum(r[5] for r in p))
        for t, p in parts.items()
    }


def _rows(conn: psycopg.Connection, key: SeriesKey) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT open_time, open::float8, high::float8, low::float8, close::float8,"
        " volume::float8 FROM marts.candles WHERE market = %s AND symbol = %s AND interval = %s"
        " ORDER BY open_time",
        (key.market, key.symbol, key.interval),
    ).fetchall()


def test_a_long_window_reads_the_coarsest_stored_interval_that_covers_it(warehouse: str) -> None:
    minutes = SeriesKey("spot", "SYNUSDT", "1m")
    start = datetime(2023, 1, 1, tzinfo=UTC)
    with psycopg.connect(warehouse) as conn:
        win = queries.plan(
            conn, minutes, queries.window(minutes, start, start + timedelta(days=2), max_bars=100)
        )
        got = queries.bars(conn, minutes, win)
        gaps = queries.gaps(conn, minutes, win)
        rows = queries.features(conn, minutes, win)
        own = _buckets(_rows(conn, minutes), win.bucket)
        source = _buckets(_rows(conn, SeriesKey("spot", "SYNUSDT", "15m")), win.bucket)
    # 2,880 bars in ≤ 100 candles: 29-minute buckets → 15m bars (dbt's) in 30-minute buckets
    assert (win.source, win.source_resampled, win.bucket) == ("15m", True, timedelta(minutes=30))
    drawn = {b.open_time: (b.open, b.high, b.low, b.close, b.volume) for b in got}
    assert len(drawn) == 96 and drawn == source
    assert not any(b.resampled for b in got)  # dbt's bars of this very series
    # every bucket equals the 1m bars' own, but the one with the missing minute (16:40),
    # whose 16:30 15m bar dbt left out as incomplete
    hole = datetime(2023, 1, 1, 16, 30, tzinfo=UTC)
    assert {t for t in own if drawn[t] != own[t]} == {hole}
    assert [(g.start, g.end, g.missing_bars) for g in gaps] == [(hole, hole, 1)]
    # the features of each bucket's closing minute
    assert [r.bar_open_time for r in rows] == [t + timedelta(minutes=29) for t in sorted(own)]
    # a window ending inside a source bar: the series' own bars fill the edge
    cut = start + timedelta(days=2) - timedelta(minutes=10)
    with psycopg.connect(warehouse) as conn:
        edge = queries.plan(conn, minutes, queries.window(minutes, start, cut, max_bars=100))
        last = queries.bars(conn, minutes, edge)[-1]
        own_rows = [r for r in _rows(conn, minutes) if r[0] < cut]
    assert (edge.source, edge.tail) == ("15m", cut - timedelta(minutes=5))
    assert last.open_time == cut - timedelta(minutes=20)
    assert (last.open, last.high, last.low, last.close, last.volume) == _buckets(
        own_rows, edge.bucket
    )[last.open_time]
    # a window short enough is drawn from the series' own bars
    short = queries.plan(
        conn := psycopg.connect(warehouse),
        minutes,
        queries.window(minutes, start, start + timedelta(hours=6)),
    )
    conn.close()
    assert short.source is None and not short.downsampled(minutes)
