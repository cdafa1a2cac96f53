"""Synthetic data for the benchmarks and the tests: raw klines with a planted signal
(`klines`, which tests load into raw and build into the marts with dbt) and rows
shaped like the marts (`frame`; `write_marts` only for the training benchmark,
which needs more rows than dbt builds quickly).

Never used for a model anyone serves: real training reads the dbt marts.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from psycopg import sql

from klinehouse.db import connect
from klinehouse.features import (
    LABEL_CLASS,
    LABEL_HORIZONS,
    LABEL_RETURN,
    LABELS,
    NUMERIC_FEATURES,
    label_class,
    label_return,
)


def frame(
    *,
    bars: int = 1500,
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "SOLUSDT"),
    signal: float = 0.0,
    seed: int = 0,
) -> pl.DataFrame:
    """Random features; the next return depends on `log_return_4` with strength `signal`."""
    rng = np.random.default_rng(seed)
    start = datetime(2022, 1, 1, tzinfo=UTC)
    times = pl.datetime_range(
        start, start + timedelta(hours=bars - 1), interval="1h", eager=True, time_zone="UTC"
    )
    parts = []
    for symbol in symbols:
        cols = {name: rng.normal(size=bars) for name in NUMERIC_FEATURES}
        ret = signal * 0.01 * cols["log_return_4"] + rng.normal(scale=0.01, size=bars)
        parts.append(
            pl.DataFrame(
                {
                    "market": "spot",
                    "symbol": symbol,
                    "interval": "1h",
                    "open_time": times,
                    **cols,
                    LABEL_RETURN: ret,
                    LABEL_CLASS: ret > 0,
                    **_longer_labels(ret),
                }
            )
        )
    return pl.concat(parts).sort("open_time", "symbol")


def _longer_labels(ret: np.ndarray) -> dict[str, pl.Series]:
    """The labels over h > 1 bars: sums of the next h one-bar log returns (None at the end)."""
    out: dict[str, pl.Series] = {}
    cumulative = np.concatenate(([0.0], np.cumsum(ret)))
    for h in LABEL_HORIZONS[1:]:
        total = cumulative[h:] - cumulative[:-h]
        values = [*total.tolist(), *([None] * (h - 1))]
        out[label_return(h)] = pl.Series(values, dtype=pl.Float64)
        out[label_class(h)] = pl.Series([None if v is None else v > 0 for v in values])
    return out


def klines(
    *,
    bars: int = 900,
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "SOLUSDT"),
    signal: float = 1.0,
    seed: int = 0,
    first: datetime = datetime(2022, 1, 1, tzinfo=UTC),
) -> pl.DataFrame:
    """Hourly spot klines (the kline schema) whose next return follows this bar's
    taker-buy ratio with strength `signal`: a model reading the feature
    `taker_buy_ratio` can predict the next bar; momentum and buy-and-hold cannot."""
    rng = np.random.default_rng(seed)
    times = pl.datetime_range(
        first, first + timedelta(hours=bars - 1), interval="1h", eager=True, time_zone="UTC"
    )
    parts = []
    for k, symbol in enumerate(symbols):
        ratio = rng.uniform(0.05, 0.95, size=bars)
        noise = rng.normal(scale=0.01, size=bars)
        step = np.concatenate(([0.0], signal * 0.035 * (ratio[:-1] - 0.5) + noise[1:]))
        close = 100.0 * (k + 1) * np.exp(np.cumsum(step))
        open_ = np.concatenate(([close[0]], close[:-1]))
        volume = rng.uniform(50.0, 150.0, size=bars)
        parts.append(
            pl.DataFrame(
                {
                    "market": "spot",
                    "symbol": symbol,
                    "interval": "1h",
                    "open_time": times,
                    "close_time": times + timedelta(hours=1) - timedelta(milliseconds=1),
                    "open": open_,
                    "high": np.maximum(open_, close) * 1.002,
                    "low": np.minimum(open_, close) * 0.998,
                    "close": close,
                    "volume": volume,
                    "quote_volume": volume * close,
                    "trades": rng.integers(100, 1000, size=bars),
                    "taker_buy_base_volume": volume * ratio,
                    "taker_buy_quote_volume": volume * ratio * close,
                    "source": "import",
                }
            )
        )
    return pl.concat(parts)


def write_marts(df: pl.DataFrame, *, url: str | None = None) -> None:
    """Create marts.candle_features / candle_labels (as tables) and COPY `df` into them."""
    keys = ["market", "symbol", "interval", "open_time"]
    tables = {
        "candle_features": (list(NUMERIC_FEATURES), "double precision"),
        "candle_labels": (list(LABELS), None),
    }
    with connect(url) as conn:
        for table, (columns, kind) in tables.items():
            defs = [
                sql.SQL("{} {}").format(
                    sql.Identifier(c),
                    sql.SQL(
                        "boolean" if c.startswith(LABEL_CLASS) else (kind or "double precision")
                    ),
                )
                for c in columns
            ]
            conn.execute(
                sql.SQL(
                    "CREATE TABLE marts.{} (market text, symbol text, interval text,"
                    " open_time timestamptz, {}, PRIMARY KEY (market, symbol, interval, open_time))"
                ).format(sql.Identifier(table), sql.SQL(", ").join(defs))
            )
            buffer = io.BytesIO()
            df.select(*keys, *columns).write_csv(buffer, include_header=False)
            copy_sql = sql.SQL("COPY marts.{} FROM STDIN (FORMAT csv)").format(
                sql.Identifier(table)
            )
            with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                copy.write(buffer.getvalue())
        conn.commit()
