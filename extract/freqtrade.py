"""freqtrade data files (`BTC_USDT-1h.json|feather|parquet`) -> kline frame, source 'import'.

freqtrade keeps OHLCV only: close_time follows from the interval, the other raw
columns stay NULL. JSON numbers are taken from their text (no float round trip);
feather/parquet hold float64, whose shortest repr is the number freqtrade stored.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl

from extract.frames import KlineParseError, to_klines
from klinehouse.errors import KlinehouseError

# BTC_USDT-1h.json, BTC_USDT_USDT-1h-futures.feather (futures: base_quote_settle)
_NAME = re.compile(
    r"^(?P<base>[A-Z0-9]+)_(?P<quote>[A-Z0-9]+)(?:_(?P<settle>[A-Z0-9]+))?"
    r"-(?P<tf>\d+[smhdwM])(?:-(?P<kind>[a-z_]+))?\.(?P<ext>json|feather|parquet)$"
)
SUFFIXES = (".json", ".feather", ".parquet")
_OHLCV = ("open_time", "open", "high", "low", "close", "volume")


def parse_freqtrade_name(name: str) -> tuple[str, str]:
    """(symbol, interval) from a freqtrade file name: BTC_USDT-1h.json -> (BTCUSDT, 1h)."""
    match = _NAME.match(Path(name).name)
    if not match:
        raise KlinehouseError(
            f"{name}: not a freqtrade data file name (expected BASE_QUOTE-TIMEFRAME.json|feather|parquet)"
        )
    return match["base"] + match["quote"], match["tf"]


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a price or a volume")


def _read_json(path: Path) -> pl.DataFrame:
    try:
        # parse_float/parse_int=str keep each number's exact text; NaN/Infinity are refused.
        rows = json.loads(
            path.read_text(), parse_float=str, parse_int=str, parse_constant=_refuse_constant
        )
    except RecursionError:
        raise KlineParseError(f"{path}: not a freqtrade JSON file: nested too deeply") from None
    except (OSError, ValueError) as exc:
        raise KlineParseError(f"{path}: not a freqtrade JSON file: {exc}") from exc
    if not isinstance(rows, list) or any(not isinstance(r, list) or len(r) < 6 for r in rows):
        raise KlineParseError(
            f"{path}: expected a list of [open_time_ms, open, high, low, close, volume] rows"
        )
    if not rows:
        raise KlineParseError(f"{path}: empty file (no kline rows)")
    for index, row in enumerate(rows):
        for name, value in zip(_OHLCV, row[:6], strict=True):
            if not isinstance(value, str):  # true, null, a nested list or object
                shown = json.dumps(value)[:40]
                raise KlineParseError(
                    f"{path}: row {index + 1}, field {name!r}: {shown} is not a number; "
                    "the file was refused (nothing loaded)"
                )
    columns = list(zip(*(r[:6] for r in rows), strict=True))
    return pl.DataFrame(
        {name: list(values) for name, values in zip(_OHLCV, columns, strict=True)},
        schema=dict.fromkeys(_OHLCV, pl.String),
    )


def _as_milliseconds(df: pl.DataFrame, path: Path) -> pl.DataFrame:
    """open_time in ms: freqtrade files in epoch seconds (10 digits) are detected, not 1970."""
    text = df["open_time"].str.strip_chars()
    digits = set(text.str.len_chars().unique().to_list())
    if digits <= {9, 10} and text.str.contains(r"^\d+$").all():
        return df.with_columns(open_time=text + "000")
    if digits <= {12, 13}:
        return df
    raise KlineParseError(
        f"{path}: field 'open_time' must be all epoch milliseconds (13 digits) or all epoch "
        f"seconds (10 digits), found digit counts {sorted(d for d in digits if d is not None)}"
    )


def _read_columnar(path: Path) -> pl.DataFrame:
    try:
        df = pl.read_ipc(path) if path.suffix == ".feather" else pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise KlineParseError(f"{path}: cannot read freqtrade file: {exc}") from exc
    missing = {"date", "open", "high", "low", "close", "volume"} - set(df.columns)
    if missing:
        raise KlineParseError(f"{path}: missing freqtrade columns {sorted(missing)}")
    date = df["date"]
    if date.dtype.is_temporal():
        millis = (
            date.cast(pl.Datetime("ms")).dt.epoch("ms")
            if isinstance(date.dtype, pl.Datetime)
            else date.cast(pl.Int64)
        )
    else:
        millis = date.cast(pl.Int64)
    return pl.DataFrame(
        {
            "open_time": millis.cast(pl.String),
            **{c: df[c].cast(pl.String) for c in ("open", "high", "low", "close", "volume")},
        }
    )


def read_freqtrade(
    path: str | Path, *, market: str, symbol: str | None = None, interval: str | None = None
) -> pl.DataFrame:
    """One freqtrade file in the kline schema; symbol/interval default to the file name's."""
    path = Path(path)
    if symbol is None or interval is None:
        name_symbol, name_interval = parse_freqtrade_name(path.name)
        symbol = symbol or name_symbol
        interval = interval or name_interval
    raw = _read_json(path) if path.suffix == ".json" else _read_columnar(path)
    if raw.is_empty():
        raise KlineParseError(f"{path}: empty file (no kline rows)")
    raw = _as_milliseconds(raw, path)
    return to_klines(
        raw,
        market=market,
        symbol=symbol,
        interval=interval,
        source="import",
        time_unit="ms",
        what=str(path),
    )
