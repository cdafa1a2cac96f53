"""data.binance.vision kline archives: CSV (or a zip of one CSV) -> kline frame.

Header rows are detected by content (spot archives have none, futures archives
and some copies do), the time unit per file by digit count (spot archives switch
from ms to µs on 2025-01-01), and the SHA-256 `.CHECKSUM` beside each zip is
verified before anything of the file is used.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from extract.frames import ARRAY_FIELDS, KlineParseError, to_klines
from klinehouse.errors import KlinehouseError

# BTCUSDT-1h-2024-11.csv / .zip, or a daily file BTCUSDT-1h-2024-11-05.zip
_NAME = re.compile(
    r"^(?P<symbol>[A-Z0-9]+)-(?P<interval>\d+[smhdwM])-(?P<period>\d{4}-\d{2}(?:-\d{2})?)\.(?:csv|zip)$"
)


class ChecksumMismatch(KlinehouseError):
    """An archive's SHA-256 differs from its .CHECKSUM file: the archive is rejected."""


# Each market's folder on data.binance.vision (tests/extract/test_markets.py: every market).
ARCHIVE_ROOTS: Final = {"spot": "spot", "usdm": "futures/um", "coinm": "futures/cm"}


@dataclass(frozen=True)
class ArchiveName:
    symbol: str
    interval: str
    period: str  # YYYY-MM (monthly) or YYYY-MM-DD (daily)


def parse_archive_name(name: str) -> ArchiveName:
    """Symbol, interval and period from `BTCUSDT-1h-2024-11.zip`; KlinehouseError otherwise."""
    match = _NAME.match(Path(name).name)
    if not match:
        raise KlinehouseError(
            f"{name}: not a Binance kline archive name (expected SYMBOL-INTERVAL-YYYY-MM[-DD].csv|zip)"
        )
    return ArchiveName(match["symbol"], match["interval"], match["period"])


def market_from_path(path: str) -> str | None:
    """The market implied by an archive URL or path (futures/um, futures/cm, spot)."""
    for market, root in ARCHIVE_ROOTS.items():
        if f"/{root}/" in path:
            return market
    return None


def verify_checksum(data: bytes, checksum_text: str, *, what: str) -> None:
    """Raise ChecksumMismatch unless sha256(data) equals the first field of the CHECKSUM text."""
    expected = checksum_text.strip().split()[0].lower() if checksum_text.strip() else ""
    actual = hashlib.sha256(data).hexdigest()
    if expected != actual:
        raise ChecksumMismatch(
            f"{what}: SHA-256 {actual} does not match its .CHECKSUM ({expected or 'empty'}); "
            "the file was rejected and nothing of it was loaded"
        )


def _csv_bytes(data: bytes, what: str) -> bytes:
    if not data.startswith(b"PK"):
        return data
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [n for n in zf.namelist() if n.lower().endswith(".csv")]
            if len(members) != 1:
                raise KlineParseError(f"{what}: expected one CSV inside the zip, found {members}")
            return zf.read(members[0])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise KlineParseError(f"{what}: not a readable zip (truncated or corrupt: {exc})") from exc


def _check_field_counts(text: bytes, what: str) -> None:
    """Every line holds the 12 fields: a truncated last line or a short row is refused
    (polars would fill the missing fields with NULL)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.count(b",") + 1
        if fields != len(ARRAY_FIELDS):
            cut = " (truncated?)" if number == len(text.splitlines()) else ""
            raise KlineParseError(
                f"{what}: line {number}: expected {len(ARRAY_FIELDS)} fields, found "
                f"{fields}{cut}; the file was refused (nothing loaded)"
            )


def read_archive_csv(
    path_or_bytes: str | Path | bytes,
    *,
    market: str,
    symbol: str,
    interval: str,
    what: str | None = None,
) -> pl.DataFrame:
    """One archive CSV (or zip of it) in the kline schema, source 'archive'.

    Errors name `what` (default: the path, or the series for bytes), the line and the field."""
    if isinstance(path_or_bytes, bytes):
        data, what = path_or_bytes, what or f"{symbol} {interval} archive"
    else:
        path = Path(path_or_bytes)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise KlinehouseError(f"{path}: cannot read archive: {exc.strerror}") from exc
        what = what or str(path)
    text = _csv_bytes(data, what)
    if not text.strip():
        raise KlineParseError(f"{what}: empty file (no kline rows)")
    _check_field_counts(text, what)
    try:
        raw = pl.read_csv(
            io.BytesIO(text), has_header=False, infer_schema=False, new_columns=list(ARRAY_FIELDS)
        )
    except pl.exceptions.PolarsError as exc:
        raise KlineParseError(f"{what}: not a 12-column kline CSV: {exc}") from exc
    if raw.width != len(ARRAY_FIELDS):
        raise KlineParseError(f"{what}: expected 12 columns, found {raw.width}")
    # A header row is recognised by content: its open_time field is not a number.
    first = (raw["open_time"][0] or "").strip() if raw.height else ""
    header = bool(raw.height and not first.isdigit())
    if header:
        raw = raw.slice(1)
    if not raw.height:
        raise KlineParseError(f"{what}: a header only (no kline rows)")
    return to_klines(
        raw,
        market=market,
        symbol=symbol,
        interval=interval,
        source="archive",
        time_unit=None,
        what=what,
        first_line=2 if header else 1,
    )


def archive_url(base_url: str, market: str, symbol: str, interval: str, period: str) -> str:
    """The data.binance.vision URL of a monthly (YYYY-MM) or daily (YYYY-MM-DD) kline zip."""
    root = ARCHIVE_ROOTS[market]
    cadence = "daily" if len(period) == 10 else "monthly"
    return (
        f"{base_url.rstrip('/')}/data/{root}/{cadence}/klines/{symbol}/{interval}/"
        f"{symbol}-{interval}-{period}.zip"
    )


class ArchiveNotFound(KlinehouseError):
    """The archive server has no such file (404): the period is not published (yet)."""


def download(url: str, *, timeout: float = 60.0) -> bytes:
    """An archive zip whose SHA-256 matched its `.CHECKSUM`; ArchiveNotFound on 404."""
    import requests

    def get(target: str) -> requests.Response:
        try:
            response = requests.get(target, timeout=timeout)
        except requests.RequestException as exc:
            raise KlinehouseError(f"{target}: download failed: {exc}") from exc
        if response.status_code == 404:
            raise ArchiveNotFound(f"{target}: not found (404)")
        if response.status_code != 200:
            raise KlinehouseError(f"{target}: HTTP {response.status_code}")
        return response

    data = get(url).content
    verify_checksum(data, get(url + ".CHECKSUM").text, what=url)
    return data
