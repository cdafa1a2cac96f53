"""The dashboard's reads of the warehouse: each one by key and range, never a full scan.

Every query names the series (`market`, `symbol`, `interval`) and, where it reads bars, a
half-open `[start, end)` window on `open_time`, so PostgreSQL answers from the marts' key
index. A window longer than `MAX_BARS` bars is downsampled in SQL (date_bin buckets: first
open, max high, min low, last close, summed volume), so the browser never receives more than
about `MAX_BARS` candles whatever the range. `STATEMENTS` lists every statement with sample
parameters: the tests EXPLAIN each one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from klinehouse.features import LABEL_CLASS, LABEL_RETURN, NUMERIC_FEATURES
from klinehouse.klines import interval_length

MAX_BARS = 2000
# Buckets are aligned on the Unix epoch, so that they fall on the interval grid.
ORIGIN = datetime(1970, 1, 1, tzinfo=UTC)
# A calendar month has no fixed length: buckets of '1M' bars use 31 days (they never need any:
# 2,000 months are 166 years).
_MONTH = timedelta(days=31)

_KEY = "market = %(market)s AND symbol = %(symbol)s AND interval = %(interval)s"
_RANGE = "open_time >= %(start)s AND open_time < %(end)s"


@dataclass(frozen=True)
class SeriesKey:
    market: str
    symbol: str
    interval: str

    @property
    def bar(self) -> timedelta:
        return interval_length(self.interval) or _MONTH

    def encode(self) -> str:
        """The value of the series picker: `market|symbol|interval`."""
        return f"{self.market}|{self.symbol}|{self.interval}"

    @classmethod
    def decode(cls, value: str) -> SeriesKey:
        market, symbol, interval = value.split("|")
        return cls(market, symbol, interval)

    def label(self) -> str:
        return f"{self.symbol} {self.interval} ({self.market})"


@dataclass(frozen=True)
class Window:
    """A half-open time window and the bucket width its bars are read at."""

    start: datetime
    end: datetime
    bucket: timedelta
    # the interval whose stored bars are re-bucketed (a coarser one of the same symbol in
    # marts.candles, e.g. 1h resampled by dbt from 1m, when it covers the window); None: the
    # series' own bars
    source: str | None = None
    source_resampled: bool = False  # the source was resampled by dbt from the series' interval
    head: datetime | None = None  # the source's bars cover [head, tail)
    tail: datetime | None = None

    def downsampled(self, key: SeriesKey) -> bool:
        return self.bucket > key.bar

    def source_key(self, key: SeriesKey) -> SeriesKey:
        return SeriesKey(key.market, key.symbol, self.source) if self.source else key


def window(key: SeriesKey, start: datetime, end: datetime, max_bars: int = MAX_BARS) -> Window:
    """[start, end) with the smallest whole multiple of the bar that yields ≤ max_bars buckets."""
    bars = max(1.0, (end - start) / key.bar)
    factor = max(1, math.ceil(bars / max_bars))
    return Window(start, end, key.bar * factor)


INTERVALS_SQL = """
WITH RECURSIVE s AS (
    (SELECT interval FROM marts.candles WHERE market = %(market)s AND symbol = %(symbol)s
     ORDER BY interval LIMIT 1)
    UNION ALL
    SELECT n.interval
    FROM s, LATERAL (
        SELECT c.interval FROM marts.candles AS c
        WHERE c.market = %(market)s AND c.symbol = %(symbol)s AND c.interval > s.interval
        ORDER BY c.interval LIMIT 1
    ) AS n
)
SELECT interval FROM s
"""

# The first and last bar of a series in a window, and where the first came from.
EDGES_SQL = f"""
SELECT
    (SELECT open_time FROM marts.candles WHERE {_KEY} AND {_RANGE} ORDER BY open_time LIMIT 1),
    (SELECT open_time FROM marts.candles WHERE {_KEY} AND {_RANGE}
     ORDER BY open_time DESC LIMIT 1),
    (SELECT resampled_from FROM marts.candles WHERE {_KEY} AND {_RANGE}
     ORDER BY open_time LIMIT 1)
"""


def plan(conn: psycopg.Connection, key: SeriesKey, win: Window) -> Window:
    """`win`, reading a long window from the coarsest stored interval of the same symbol that
    is no longer than its bucket and covers the window as the series does (the bucket then
    grows to a whole number of that interval's bars: still ≤ MAX_BARS candles). A year of 1m
    bars is read as 8,760 1h bars instead of 525,600."""
    if not win.downsampled(key) or interval_length(key.interval) is None:
        return win
    own = conn.execute(EDGES_SQL, _params(key, win)).fetchone()
    if own is None or own[0] is None:
        return win
    candidates = []
    for (interval,) in conn.execute(INTERVALS_SQL, _params(key)).fetchall():
        length = interval_length(interval) if interval in _FIXED else None
        if length is not None and key.bar < length <= win.bucket and length % key.bar == _ZERO:
            candidates.append((length, interval))
    for length, interval in sorted(candidates, reverse=True):
        source = SeriesKey(key.market, key.symbol, interval)
        # source bars that end inside the window: open_time + length <= end
        inside = Window(win.start, win.end - length + key.bar, win.bucket)
        edges = conn.execute(EDGES_SQL, _params(source, inside)).fetchone()
        first, last, resampled_from = edges if edges else (None, None, None)
        if first is None or first - own[0] > win.bucket or own[1] - last > win.bucket:
            continue  # it does not cover the window as the series does
        bucket = -(-win.bucket // length) * length
        return Window(
            win.start,
            win.end,
            bucket,
            interval,
            resampled_from == key.interval,
            head=first,
            tail=last + length,
        )
    return win


_FIXED = {
    name for name in ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d")
}
_ZERO = timedelta(0)


@dataclass(frozen=True)
class Bar:
    """One candle as drawn: a native bar, or a bucket of `bars` bars when downsampled."""

    open_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    bars: int
    resampled: bool  # built by dbt from a finer interval (not Binance's own bar)
    zero_volume: bool
    off_grid: bool
    close_time_short: bool


@dataclass(frozen=True)
class Gap:
    start: datetime  # the first missing bar
    end: datetime  # the last missing bar
    missing_bars: int


@dataclass(frozen=True)
class FeatureRow:
    """The features and labels of the bar that closes a bucket (every bar when not downsampled),
    placed at the bucket's start."""

    open_time: datetime
    bar_open_time: datetime
    values: dict[str, float | None]
    target_up: bool | None
    target_log_return: float | None


@dataclass(frozen=True)
class Newest:
    """The series' newest loaded bar (serving.klines: it moves as soon as `klinehouse
    stream` commits a bar, before any transform) and the newest transformed bar's features."""

    bar: Bar | None
    features_open_time: datetime | None
    features: dict[str, float | None]


SERIES_SQL = """
WITH RECURSIVE s AS (
    (SELECT market, symbol, interval FROM marts.candles
     ORDER BY market, symbol, interval LIMIT 1)
    UNION ALL
    SELECT n.market, n.symbol, n.interval
    FROM s, LATERAL (
        SELECT c.market, c.symbol, c.interval FROM marts.candles AS c
        WHERE (c.market, c.symbol, c.interval) > (s.market, s.symbol, s.interval)
        ORDER BY c.market, c.symbol, c.interval LIMIT 1
    ) AS n
)
SELECT market, symbol, interval FROM s
"""

BOUNDS_SQL = f"""
SELECT
    (SELECT open_time FROM marts.candles WHERE {_KEY} ORDER BY open_time LIMIT 1),
    (SELECT open_time FROM marts.candles WHERE {_KEY} ORDER BY open_time DESC LIMIT 1)
"""

_BAR_FLAGS = (
    "resampled_from IS NOT NULL AS resampled",
    "is_zero_volume",
    "NOT is_on_grid AS off_grid",
    "is_close_time_short",
)
_FLAG_NAMES = ("resampled", "is_zero_volume", "off_grid", "is_close_time_short")

BARS_SQL = f"""
SELECT open_time, open::float8, high::float8, low::float8, close::float8, volume::float8, 1,
       {", ".join(f"coalesce({flag.split(' AS ')[0]}, false)" for flag in _BAR_FLAGS)}
FROM marts.candles
WHERE {_KEY} AND {_RANGE}
ORDER BY open_time
"""

_BUCKET_COLUMNS = f"open_time, open, high, low, close, volume, {', '.join(_BAR_FLAGS)}"
_SOURCE_KEY = "market = %(market)s AND symbol = %(symbol)s AND interval = %(source)s"

# Buckets of the source interval's bars between `head` and `tail` and of the series' own bars
# before and after (where the source has no complete bar yet: the window's edges). An edge
# is often empty: its arm is cut by a one-time filter, else the planner may read an empty
# `open_time` range through the open_time index rather than the key.
BUCKETS_SQL = f"""
WITH bars AS (
    SELECT {_BUCKET_COLUMNS} FROM marts.candles
    WHERE %(start)s < %(head)s AND {_KEY} AND open_time >= %(start)s AND open_time < %(head)s
    UNION ALL
    SELECT {_BUCKET_COLUMNS} FROM marts.candles
    WHERE %(head)s < %(tail)s AND {_SOURCE_KEY} AND open_time >= %(head)s AND open_time < %(tail)s
    UNION ALL
    SELECT {_BUCKET_COLUMNS} FROM marts.candles
    WHERE %(tail)s < %(end)s AND {_KEY} AND open_time >= %(tail)s AND open_time < %(end)s
)
SELECT date_bin(%(bucket)s, open_time, %(origin)s) AS bucket,
       ((array_agg(open ORDER BY open_time))[1])::float8,
       max(high)::float8, min(low)::float8,
       ((array_agg(close ORDER BY open_time DESC))[1])::float8,
       sum(volume)::float8, count(*),
       {", ".join(f"coalesce(bool_or({flag}), false)" for flag in _FLAG_NAMES)}
FROM bars
GROUP BY bucket
ORDER BY bucket
"""

# The gaps of a window, by the rule of marts.candle_gaps (a run of missing bars between two
# consecutive on-grid bars), computed from the window's bars and the one on-grid bar either side
# of it. marts.candle_gaps itself cannot be read by range: its lead() runs over the whole series
# before any filter on time applies (tests/dashboard holds the two equal).
GAPS_SQL = f"""
WITH bars AS (
    (SELECT open_time FROM marts.candles
     WHERE {_KEY} AND is_on_grid AND open_time < %(start)s ORDER BY open_time DESC LIMIT 1)
    UNION ALL
    (SELECT open_time FROM marts.candles WHERE {_KEY} AND is_on_grid AND {_RANGE})
    UNION ALL
    (SELECT open_time FROM marts.candles
     WHERE {_KEY} AND is_on_grid AND open_time >= %(end)s ORDER BY open_time LIMIT 1)
),
steps AS (
    SELECT open_time, lead(open_time) OVER (ORDER BY open_time) AS next_open_time FROM bars
)
SELECT open_time + %(bar)s, next_open_time - %(bar)s,
       round(extract(epoch FROM next_open_time - open_time) / extract(epoch FROM %(bar)s))::bigint - 1
FROM steps
WHERE next_open_time > open_time + %(bar)s
  AND next_open_time > %(start)s AND open_time + %(bar)s < %(end)s
ORDER BY open_time
"""

_FEATURE_SELECT = ", ".join(f"f.{name}::float8" for name in NUMERIC_FEATURES)

# The closing bar of each bucket: its open_time + one bar is a bucket boundary (with one-bar
# buckets, every bar). A filter on the key range: no sort, no aggregate.
FEATURES_SQL = f"""
SELECT date_bin(%(bucket)s, f.open_time, %(origin)s), f.open_time, {_FEATURE_SELECT},
       l.{LABEL_CLASS}, l.{LABEL_RETURN}::float8
FROM marts.candle_features AS f
LEFT JOIN LATERAL (
    -- one probe of the labels' key per drawn row
    SELECT * FROM marts.candle_labels AS l
    WHERE l.market = f.market AND l.symbol = f.symbol AND l.interval = f.interval
      AND l.open_time = f.open_time
    OFFSET 0  -- keeps the subquery apart: always a parameterised probe, whatever the statistics
) AS l ON true
WHERE f.market = %(market)s AND f.symbol = %(symbol)s AND f.interval = %(interval)s
  AND f.open_time >= %(start)s AND f.open_time < %(end)s
  AND date_bin(%(bucket)s, f.open_time + %(bar)s, %(origin)s) = f.open_time + %(bar)s
ORDER BY f.open_time
"""

# Downsampled: the closing bar of each bucket, one key probe per bucket (≤ MAX_BARS probes)
# rather than a filter over every bar of the window.
FEATURES_PROBE_SQL = f"""
SELECT t.bucket, f.open_time, {_FEATURE_SELECT}, l.{LABEL_CLASS}, l.{LABEL_RETURN}::float8
FROM generate_series(
    date_bin(%(bucket)s, %(start)s, %(origin)s), %(end)s, %(bucket)s
) AS t(bucket)
CROSS JOIN LATERAL (
    SELECT * FROM marts.candle_features AS f
    WHERE f.market = %(market)s AND f.symbol = %(symbol)s AND f.interval = %(interval)s
      AND f.open_time = t.bucket + %(bucket)s - %(bar)s
    OFFSET 0
) AS f
LEFT JOIN LATERAL (
    SELECT * FROM marts.candle_labels AS l
    WHERE l.market = f.market AND l.symbol = f.symbol AND l.interval = f.interval
      AND l.open_time = f.open_time
    OFFSET 0
) AS l ON true
WHERE f.open_time >= %(start)s AND f.open_time < %(end)s
ORDER BY t.bucket
"""

NEWEST_SQL = f"""
SELECT open_time, open::float8, high::float8, low::float8, close::float8, volume::float8, 1,
       false, volume = 0, false, false
FROM serving.klines
WHERE {_KEY}
-- serving.klines (migration 0004) is raw under marts.candles' cleaning rules and flattens
-- into raw's primary key: newest first, one row read. It moves as soon as `klinehouse
-- stream` commits a bar; on the grid by construction, and the newest bar has no successor
-- to be cut short by.
ORDER BY open_time DESC
LIMIT 1
"""

# The newest transformed bar's features (marts.candle_features_latest computes them at query
# time but reads every loaded kline of the market to do so: not a by-key read).
LATEST_FEATURES_SQL = f"""
SELECT open_time, {", ".join(f"{name}::float8" for name in NUMERIC_FEATURES)}
FROM marts.candle_features
WHERE {_KEY}
ORDER BY open_time DESC
LIMIT 1
"""

_MODEL_COLUMNS = """version, created_at, status, status_reason, promoted_at, market, interval,
       symbols, train_start, train_end, buy_threshold, sell_threshold, fee_rate, metrics,
       artifact_uri"""
# The registry page lists every model (one row per training run: a small table).
MODELS_SQL = (
    f"SELECT {_MODEL_COLUMNS} FROM ml.model_registry ORDER BY created_at DESC, version DESC"
)
MODEL_SQL = f"SELECT {_MODEL_COLUMNS} FROM ml.model_registry WHERE version = %s"


def _params(key: SeriesKey, win: Window | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "market": key.market,
        "symbol": key.symbol,
        "interval": key.interval,
        "origin": ORIGIN,
        "bar": key.bar,
    }
    if win is not None:
        # without a source, the series' own bars fill [start, end): head = tail = end
        params.update(
            start=win.start,
            end=win.end,
            bucket=win.bucket,
            source=win.source or key.interval,
            head=win.head or win.end,
            tail=win.tail or win.end,
        )
    return params


def statements(key: SeriesKey, win: Window) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every statement the callbacks run, with parameters for `key` and `win` (for EXPLAIN)."""
    p = _params(key, win)
    return {
        "series": (SERIES_SQL, {}),
        "bounds": (BOUNDS_SQL, p),
        "bars": (BARS_SQL, p),
        "buckets": (BUCKETS_SQL, p),
        "gaps": (GAPS_SQL, p),
        "features": (FEATURES_SQL, p),
        "features_probe": (FEATURES_PROBE_SQL, p),
        "intervals": (INTERVALS_SQL, p),
        "edges": (EDGES_SQL, p),
        "newest": (NEWEST_SQL, p),
        "latest_features": (LATEST_FEATURES_SQL, p),
    }


def _bar(row: tuple[Any, ...]) -> Bar:
    t, o, h, lo, c, v, n, resampled, zero, off_grid, short = row
    return Bar(t, o, h, lo, c, v, int(n), bool(resampled), bool(zero), bool(off_grid), bool(short))


def series(conn: psycopg.Connection) -> list[SeriesKey]:
    return [SeriesKey(*row) for row in conn.execute(SERIES_SQL).fetchall()]


def bounds(conn: psycopg.Connection, key: SeriesKey) -> tuple[datetime, datetime] | None:
    row = conn.execute(BOUNDS_SQL, _params(key)).fetchone()
    if row is None or row[0] is None:
        return None
    return row[0], row[1]


def bars(conn: psycopg.Connection, key: SeriesKey, win: Window) -> list[Bar]:
    """The window's candles (`win` as `plan` made it): the series' own bars, or buckets of
    the source interval's bars."""
    if not win.downsampled(key):
        return [_bar(row) for row in conn.execute(BARS_SQL, _params(key, win)).fetchall()]
    rows = conn.execute(BUCKETS_SQL, _params(key, win)).fetchall()
    drawn = [_bar(row) for row in rows]
    if win.source_resampled:  # built from this very series: not a bar of another source
        drawn = [replace(b, resampled=False) for b in drawn]
    return drawn


def gaps(conn: psycopg.Connection, key: SeriesKey, win: Window) -> list[Gap]:
    """The window's gaps; read from a source dbt resampled from this series when the window
    has one (its bars exist only where every bar of the series does: each missing source bar
    holds at least one missing bar of the series)."""
    if interval_length(key.interval) is None:
        return []  # calendar months: no fixed bar to count gaps in
    source = win.source_key(key) if win.source_resampled else key
    return [Gap(*row) for row in conn.execute(GAPS_SQL, _params(source, win)).fetchall()]


def features(conn: psycopg.Connection, key: SeriesKey, win: Window) -> list[FeatureRow]:
    out = []
    n = len(NUMERIC_FEATURES)
    statement = FEATURES_PROBE_SQL if win.downsampled(key) else FEATURES_SQL
    for row in conn.execute(statement, _params(key, win)).fetchall():
        values = dict(zip(NUMERIC_FEATURES, row[2 : 2 + n], strict=True))
        out.append(FeatureRow(row[0], row[1], values, row[2 + n], row[3 + n]))
    return out


def newest(conn: psycopg.Connection, key: SeriesKey) -> Newest:
    p = _params(key)
    row = conn.execute(NEWEST_SQL, p).fetchone()
    latest = conn.execute(LATEST_FEATURES_SQL, p).fetchone()
    return Newest(
        _bar(row) if row else None,
        latest[0] if latest else None,
        dict(zip(NUMERIC_FEATURES, latest[1:], strict=True)) if latest else {},
    )


@dataclass(frozen=True)
class ModelRow:
    version: str
    created_at: datetime
    status: str
    reason: str
    promoted_at: datetime | None
    market: str
    interval: str
    symbols: list[str]
    train_start: datetime
    train_end: datetime
    buy_threshold: float
    sell_threshold: float
    fee_rate: float
    metrics: dict[str, Any]
    artifact_uri: str


def models(conn: psycopg.Connection) -> list[ModelRow]:
    return [ModelRow(*row) for row in conn.execute(MODELS_SQL).fetchall()]


def model(conn: psycopg.Connection, version: str) -> ModelRow | None:
    row = conn.execute(MODEL_SQL, (version,)).fetchone()
    return ModelRow(*row) if row else None
