"""Preprocessing: raw text columns of any source -> the one kline schema of klinehouse.klines.

Every source (archive CSV, REST JSON, freqtrade files) first becomes a frame of
*strings* named like `klines.COLUMNS`, then goes through `to_klines`: decimals
are parsed from their text (no float round trip), times from integers in ms or
µs. Rows breaking Binance's own invariants are kept (raw is what Binance sent)
and only counted by `invariant_violations`.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import polars as pl

from klinehouse import klines
from klinehouse.errors import KlinehouseError

TimeUnit = Literal["ms", "us"]

# Archive and REST arrays carry these 12 fields in this order ("ignore" is unused).
ARRAY_FIELDS: tuple[str, ...] = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
    "ignore",
)
_TIME_COLUMNS = ("open_time", "close_time")


class KlineParseError(KlinehouseError):
    """A value could not be parsed; the message names the source, row and column."""


def detect_time_unit(open_times: pl.Series, *, what: str) -> TimeUnit:
    """ms (13 digits) or µs (16 digits) for one file; a file mixing both is rejected."""
    lengths = open_times.str.strip_chars().str.len_chars().unique().to_list()
    units = {13: "ms", 16: "us"}
    found = {units.get(n) for n in lengths}
    if None in found or len(found) != 1:
        raise KlineParseError(
            f"{what}: open_time must be all 13-digit milliseconds or all 16-digit "
            f"microseconds, found digit counts {sorted(lengths)}"
        )
    return found.pop()  # type: ignore[return-value]


def _parse_time(name: str, unit: TimeUnit) -> pl.Expr:
    """Times at millisecond precision, whatever the source's unit: REST and the websocket
    send ms, spot archives since 2025 µs (close_time …59.999999). Kept as sent, the same
    candle from an archive and from REST would differ by 999 µs and count as revised."""
    ints = pl.col(name).str.strip_chars().cast(pl.Int64, strict=False)
    micros = ints * 1000 if unit == "ms" else ints // 1000 * 1000
    return micros.cast(klines.TIMESTAMP.base_type()).dt.replace_time_zone("UTC").alias(name)  # type: ignore[attr-defined]


def to_klines(
    raw: pl.DataFrame,
    *,
    market: str,
    symbol: str,
    interval: str,
    source: str,
    time_unit: TimeUnit | None,
    what: str,
    first_line: int | None = None,
) -> pl.DataFrame:
    """Parse a frame of string columns into the kline schema.

    Missing optional columns become NULL; a missing close_time follows from the
    interval (open_time + interval - 1 ms). `what` names the input in errors; with
    `first_line` (the file line of the frame's first row) errors name file lines.
    Binance's decimals (archive, REST, stream) must be plain text with at most 8
    decimals: anything else (`2.00930E+07` from a spreadsheet, a 9th decimal that
    would be rounded) is refused, never silently changed. freqtrade's float64
    values (source 'import') are rounded to 8 decimals.
    """
    klines.check_market(market)
    length = klines.interval_length(interval)
    if source not in klines.SOURCES:
        raise ValueError(f"unknown source {source!r}: one of {', '.join(klines.SOURCES)}")
    unit = time_unit or detect_time_unit(raw["open_time"], what=what)
    exprs: list[pl.Expr] = [
        pl.lit(market).alias("market"),
        pl.lit(symbol.upper()).alias("symbol"),
        pl.lit(interval).alias("interval"),
        _parse_time("open_time", unit),
    ]
    if "close_time" in raw.columns:
        exprs.append(_parse_time("close_time", unit))
    elif length is not None:
        exprs.append(
            (_parse_time("open_time", unit) + length - pl.duration(milliseconds=1)).alias(
                "close_time"
            )
        )
    else:
        exprs.append(
            (
                _parse_time("open_time", unit).dt.offset_by("1mo") - pl.duration(milliseconds=1)
            ).alias("close_time")
        )
    for col in klines.COLUMNS:
        if col.name in ("market", "symbol", "interval", "source", *_TIME_COLUMNS):
            continue
        if col.name in raw.columns:
            exprs.append(pl.col(col.name).str.strip_chars().cast(col.dtype, strict=False))
        elif col.nullable:
            exprs.append(pl.lit(None, dtype=col.dtype).alias(col.name))
        else:
            raise KlineParseError(f"{what}: required column {col.name!r} is missing")
    exprs.append(pl.lit(source).alias("source"))
    where = _Where(what, first_line)
    if source != "import":  # freqtrade's floats (1e-05, 0.8199999999) round to 8 decimals
        _check_decimal_text(raw, where)
    parsed = raw.select(exprs).select(klines.COLUMN_NAMES)
    _check_parsed(raw, parsed, where)
    return parsed


class _Where:
    """Names a row of an input in errors: `file: line 7` or `source: row 7`."""

    def __init__(self, what: str, first_line: int | None) -> None:
        self.what, self.first_line = what, first_line

    def __call__(self, index: int) -> str:
        if self.first_line is None:
            return f"{self.what}: row {index + 1}"
        return f"{self.what}: line {index + self.first_line}"


_PLAIN_DECIMAL = rf"^[+-]?\d+(\.\d{{0,{klines.DECIMAL_SCALE}}})?$"


def _check_decimal_text(raw: pl.DataFrame, where: _Where) -> None:
    """Refuse decimal text that is not plain or needs more than 8 decimals (rounding)."""
    names = [c.name for c in klines.COLUMNS if c.dtype == klines.DECIMAL and c.name in raw.columns]
    if not names:
        return
    flags = raw.select(
        (
            pl.col(n).is_not_null()
            & (pl.col(n).str.strip_chars() != "")
            & ~pl.col(n).str.strip_chars().str.contains(_PLAIN_DECIMAL)
        ).alias(n)
        for n in names
    )
    if not flags.select(pl.any_horizontal(pl.all().any())).item():
        return
    for name in names:
        if flags[name].any():
            row = int(flags[name].arg_true()[0])
            text = str(raw[name][row]).strip()
            raise KlineParseError(
                f"{where(row)}, field {name!r}: {text[:40]!r} is not a plain decimal with at "
                f"most {klines.DECIMAL_SCALE} decimals; the file was refused (nothing loaded)"
            )


def _check_parsed(raw: pl.DataFrame, parsed: pl.DataFrame, where: _Where) -> None:
    """Every non-empty text value must have parsed: name the first one that did not."""
    names = [n for n in parsed.columns if n in raw.columns]
    both = pl.concat(
        [raw.select(names).rename(lambda n: f"raw:{n}"), parsed.select(names)], how="horizontal"
    )
    nullable = {c.name: c.nullable for c in klines.COLUMNS}
    problems = []
    for name in names:
        text = pl.col(f"raw:{name}")
        given = text.is_not_null() & (text.str.strip_chars() != "")
        bad = given & pl.col(name).is_null()
        problems.append((bad if nullable[name] else bad | ~given).alias(name))
    flags = both.select(problems)
    # One pass over all columns; only a failing input pays for locating the row.
    if not flags.select(pl.any_horizontal(pl.all().any())).item():
        return
    for name in names:
        if flags[name].any():
            row = int(flags[name].arg_true()[0])
            raise KlineParseError(
                f"{where(row)}, field {name!r}: cannot parse {str(raw[name][row])[:40]!r} "
                f"as {parsed.schema[name]}"
            )


def collapse_duplicates(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Keep the last row per key (a later page or file wins); returns (frame, rows dropped)."""
    unique = df.unique(subset=list(klines.KEY), keep="last", maintain_order=True)
    return unique, df.height - unique.height


def invariant_violations(df: pl.DataFrame) -> dict[str, int]:
    """Counts of rows breaking Binance's invariants. They stay in raw; dbt cleans."""
    if df.is_empty():
        return {}
    counts = df.select(
        (pl.col("high") < pl.col("low")).sum().alias("high_below_low"),
        (pl.col("volume") < 0).sum().alias("negative_volume"),
        (pl.col("close_time") < pl.col("open_time")).sum().alias("close_before_open"),
        _off_grid().sum().alias("off_interval_grid"),
    ).row(0, named=True)
    return {k: int(v) for k, v in counts.items() if v}


def _off_grid() -> pl.Expr:
    """open_time not on its interval's grid (epoch-aligned; weeks start Monday, months day 1)."""
    micros = pl.col("open_time").dt.epoch("us")
    exprs = []
    for name, length in klines.INTERVALS.items():
        if length is None:
            off = (pl.col("open_time").dt.day() != 1) | (
                pl.col("open_time").dt.truncate("1d") != pl.col("open_time")
            )
        elif name == "1w":
            monday = 4 * 86_400_000_000  # 1970-01-05 was a Monday
            off = (micros - monday) % int(length.total_seconds() * 1_000_000) != 0
        else:
            off = micros % int(length.total_seconds() * 1_000_000) != 0
        exprs.append((pl.col("interval") == name, off))
    expr: Any = pl.when(exprs[0][0]).then(exprs[0][1])
    for cond, off in exprs[1:]:
        expr = expr.when(cond).then(off)
    return cast(pl.Expr, expr.otherwise(False))
