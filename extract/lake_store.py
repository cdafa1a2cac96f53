"""The parquet lake of klines: hive-partitioned zstd parquet with deterministic keys.

Layout under KLINEHOUSE_LAKE_URI:
  klines/market=spot/symbol=BTCUSDT/interval=1h/date=2024-11-01/part-0.parquet
  runs/<run_id>/manifest.json
One object per (market, symbol, interval, period): `date=` is the first UTC day of
the period, a day for intervals under 1h, a month for 1h up to 1d, a year from 1d
on, so that objects hold hundreds to tens of thousands of rows rather than a
handful (S3 round trips, not bytes, dominate small objects). A rerun rewrites the same key
instead of adding a duplicate, and rows already in the object are merged (new
rows win on the same open_time), so an incremental run never drops earlier rows.
Objects keep every kline column, partition columns included, so any reader can
use them without hive parsing.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from klinehouse import klines, lake
from klinehouse.errors import KlinehouseError
from klinehouse.settings import Settings, get_settings

KLINES_ROOT = "klines"
RUNS_ROOT = "runs"
_WORKERS = 8


@dataclass(frozen=True)
class LakeObject:
    key: str
    rows: int
    market: str
    symbol: str
    interval: str
    date: str


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def partition_key(market: str, symbol: str, interval: str, date: str, settings: Settings) -> str:
    return lake.key(
        KLINES_ROOT,
        f"market={market}",
        f"symbol={symbol}",
        f"interval={interval}",
        f"date={date}",
        "part-0.parquet",
        settings=settings,
    )


def _get(client: Any, bucket: str, key: str) -> bytes | None:
    try:
        return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    except client.exceptions.NoSuchKey:
        return None


def _parquet(df: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    df.write_parquet(buffer, compression="zstd", statistics=True)
    return buffer.getvalue()


def partition_period(interval: str) -> str:
    """The polars truncate period of an interval's lake objects ('1d', '1mo' or '1y')."""
    length = klines.interval_length(interval)
    if length is not None and length < timedelta(hours=1):
        return "1d"
    if length is not None and length < timedelta(days=1):
        return "1mo"
    return "1y"


def _partitions(df: pl.DataFrame) -> Iterator[tuple[tuple[str, str, str, str], pl.DataFrame]]:
    period = pl.col("interval").replace_strict(
        {name: partition_period(name) for name in klines.INTERVALS}, return_dtype=pl.String
    )
    start = (
        pl.when(period == "1d")
        .then(pl.col("open_time").dt.truncate("1d"))
        .when(period == "1mo")
        .then(pl.col("open_time").dt.truncate("1mo"))
        .otherwise(pl.col("open_time").dt.truncate("1y"))
    )
    dated = df.with_columns(start.dt.strftime("%Y-%m-%d").alias("_date"))
    for keys, part in dated.partition_by(
        ["market", "symbol", "interval", "_date"], as_dict=True, maintain_order=True
    ).items():
        yield tuple(str(k) for k in keys), part.drop("_date")  # type: ignore[misc]


def write_frame(df: pl.DataFrame, *, settings: Settings | None = None) -> list[LakeObject]:
    """Write a kline frame into its day partitions (merging with what is there)."""
    settings = settings or get_settings()
    if df.is_empty():
        return []
    client = lake.s3_client(settings)
    bucket = settings.lake_bucket

    def write_one(item: tuple[tuple[str, str, str, str], pl.DataFrame]) -> LakeObject:
        (market, symbol, interval, date), part = item
        key = partition_key(market, symbol, interval, date, settings)
        existing = _get(client, bucket, key)
        if existing is not None:
            old = pl.read_parquet(io.BytesIO(existing)).cast(dict(klines.polars_schema()))  # type: ignore[arg-type]
            part = pl.concat([old, part]).unique(subset=list(klines.KEY), keep="last")
        part = part.sort("open_time")
        client.put_object(Bucket=bucket, Key=key, Body=_parquet(part))
        return LakeObject(key, part.height, market, symbol, interval, date)

    with ThreadPoolExecutor(_WORKERS) as pool:
        return list(pool.map(write_one, _partitions(df)))


def write_manifest(
    run_id: str,
    objects: Iterable[LakeObject],
    extra: dict[str, Any],
    settings: Settings | None = None,
) -> str:
    """The run's manifest: which objects it wrote (what `klinehouse load --run` reads)."""
    settings = settings or get_settings()
    objects = list(objects)
    key = lake.key(RUNS_ROOT, run_id, "manifest.json", settings=settings)
    body = {
        "run_id": run_id,
        "written_at": datetime.now(UTC).isoformat(),
        "rows": sum(o.rows for o in objects),
        "objects": [asdict(o) for o in objects],
        **extra,
    }
    lake.s3_client(settings).put_object(
        Bucket=settings.lake_bucket, Key=key, Body=json.dumps(body, indent=1).encode()
    )
    return key


def run_object_keys(run_id: str, settings: Settings | None = None) -> list[str]:
    settings = settings or get_settings()
    key = lake.key(RUNS_ROOT, run_id, "manifest.json", settings=settings)
    body = _get(lake.s3_client(settings), settings.lake_bucket, key)
    if body is None:
        raise KlinehouseError(f"no manifest for run {run_id!r} at {lake.url(key, settings)}")
    return [o["key"] for o in json.loads(body)["objects"]]


def prefix_object_keys(prefix: str, settings: Settings | None = None) -> list[str]:
    """Parquet objects under a lake prefix (relative to the lake root, e.g. 'klines/market=spot')."""
    settings = settings or get_settings()
    client = lake.s3_client(settings)
    full = (
        lake.key(prefix, settings=settings) if prefix else lake.key(KLINES_ROOT, settings=settings)
    )
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=settings.lake_bucket, Prefix=full
    ):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".parquet")]
    return sorted(keys)


def read_objects(keys: list[str], settings: Settings | None = None) -> pl.DataFrame:
    """The rows of these lake objects as one kline frame."""
    settings = settings or get_settings()
    if not keys:
        return pl.DataFrame(schema=klines.polars_schema())
    client = lake.s3_client(settings)
    bucket = settings.lake_bucket

    def read_one(key: str) -> pl.DataFrame:
        body = _get(client, bucket, key)
        if body is None:
            raise KlinehouseError(f"lake object {lake.url(key, settings)} is missing")
        return pl.read_parquet(io.BytesIO(body))

    with ThreadPoolExecutor(_WORKERS) as pool:
        frames = list(pool.map(read_one, keys))
    return pl.concat(frames, how="vertical_relaxed").select(klines.COLUMN_NAMES)
