"""Imports of files users already have: Binance archives (local or URL) and freqtrade data.

Both go the way every extract goes: preprocess -> lake (day partitions, run
manifest) -> load from the lake into raw. A file that cannot be read or fails its
checksum is reported by name and contributes nothing; the others still load.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from extract import archive, freqtrade, lake_store
from extract.frames import collapse_duplicates, invariant_violations
from extract.load import LoadStats, load_frame, load_frames
from extract.summary import RunSummary
from klinehouse import klines
from klinehouse.errors import KlinehouseError
from klinehouse.settings import Settings, get_settings

Progress = Callable[[str], None]


def ingest_objects(
    df: pl.DataFrame,
    *,
    load: bool = True,
    url: str | None = None,
    settings: Settings | None = None,
) -> tuple[list[lake_store.LakeObject], LoadStats]:
    """A preprocessed frame -> lake objects -> raw (unless load=False)."""
    settings = settings or get_settings()
    if df.is_empty():
        return [], LoadStats()
    objects = lake_store.write_frame(df, settings=settings)
    if not load:
        return objects, LoadStats()
    # Read back what the lake holds, but only this batch's rows: the day/month objects
    # may also hold earlier rows, which are already loaded.
    stored = lake_store.read_objects([o.key for o in objects], settings)
    batch = stored.join(df.select(klines.KEY), on=list(klines.KEY), how="semi")
    return objects, load_frame(batch, url=url)


def ingest(
    frames: list[pl.DataFrame],
    summary: RunSummary,
    *,
    load: bool = True,
    url: str | None = None,
    settings: Settings | None = None,
    extra: dict[str, object] | None = None,
) -> RunSummary:
    """Preprocessed frames -> lake objects + run manifest -> raw (unless load=False)."""
    settings = settings or get_settings()
    frames = [f for f in frames if not f.is_empty()]
    df, dropped = collapse_duplicates(pl.concat(frames)) if frames else (pl.DataFrame(), 0)
    objects: list[lake_store.LakeObject] = []
    if frames:
        summary.duplicates_collapsed += dropped
        summary.add_violations(invariant_violations(df))
        objects, stats = ingest_objects(df, load=load, url=url, settings=settings)
        summary.written_to_lake += df.height
        summary.load = summary.load + stats
    lake_store.write_manifest(summary.run_id, objects, dict(extra or {}), settings)
    return summary


def load_lake_objects(
    keys: list[str],
    *,
    url: str | None = None,
    settings: Settings | None = None,
    objects_per_batch: int = 64,
    direct_copy: bool = True,
) -> LoadStats:
    """Load lake objects into raw (`klinehouse load`), one transaction per group of objects.

    The next group is read from S3 while the current one loads, so the lake's
    latency hides behind the database's work.
    """
    groups = [keys[i : i + objects_per_batch] for i in range(0, len(keys), objects_per_batch)]

    def frames() -> Iterator[pl.DataFrame]:
        with ThreadPoolExecutor(1) as prefetch:
            pending = [prefetch.submit(lake_store.read_objects, g, settings) for g in groups[:1]]
            for nxt in groups[1:]:
                pending.append(prefetch.submit(lake_store.read_objects, nxt, settings))
                yield pending.pop(0).result()
            for rest in pending:
                yield rest.result()

    return load_frames(frames(), url=url, direct_copy=direct_copy)


def _archive_inputs(paths: Iterable[str | Path]) -> Iterator[str]:
    for item in paths:
        text = str(item)
        if text.startswith(("http://", "https://")):
            yield text
            continue
        path = Path(text)
        if path.is_dir():
            yield from (
                str(p)
                for p in sorted(path.rglob("*"))
                if p.suffix in (".csv", ".zip") and p.is_file()
            )
        else:
            yield text


def _read_one_archive(source: str, market: str | None) -> pl.DataFrame:
    name = archive.parse_archive_name(source.rsplit("/", 1)[-1])
    resolved = market or archive.market_from_path(source) or "spot"
    if source.startswith(("http://", "https://")):
        data = archive.download(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise KlinehouseError(f"{source}: no such file")
        data = path.read_bytes()
        checksum = path.with_name(path.name + ".CHECKSUM")
        if checksum.is_file():
            archive.verify_checksum(data, checksum.read_text(), what=source)
    df = archive.read_archive_csv(data, market=resolved, symbol=name.symbol, interval=name.interval)
    return df


def import_archive_run(
    paths: Iterable[str | Path],
    *,
    market: str | None = None,
    load: bool = True,
    url: str | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Import archive CSVs/zips (files, directories or URLs); failures are listed, not fatal."""
    started = time.monotonic()
    summary = RunSummary(run_id=lake_store.new_run_id())
    frames = []
    for source in _archive_inputs(paths):
        try:
            df = _read_one_archive(source, market)
        except KlinehouseError as exc:
            message = str(exc)
            summary.failures.append(message if source in message else f"{source}: {message}")
            continue
        summary.fetched += df.height
        frames.append(df)
        if progress:
            progress(f"{source}: {df.height} rows")
    ingest(frames, summary, load=load, url=url, extra={"command": "import-archive"})
    summary.seconds = time.monotonic() - started
    return summary


def import_archive(
    paths: Iterable[str | Path], *, market: str | None = None, url: str | None = None
) -> LoadStats:
    """Import archives through the lake into raw; raises after loading the good files if any failed."""
    summary = import_archive_run(paths, market=market, url=url)
    if summary.failures:
        raise KlinehouseError("; ".join(summary.failures))
    return summary.load


def import_freqtrade_run(
    directory: str | Path,
    *,
    market: str,
    load: bool = True,
    url: str | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    started = time.monotonic()
    root = Path(directory)
    if not root.is_dir():
        raise KlinehouseError(f"{root}: not a directory")
    files = sorted(p for p in root.rglob("*") if p.suffix in freqtrade.SUFFIXES and p.is_file())
    if not files:
        raise KlinehouseError(f"{root}: no freqtrade data files (*.json, *.feather, *.parquet)")
    summary = RunSummary(run_id=lake_store.new_run_id())
    frames = []
    for path in files:
        try:
            df = freqtrade.read_freqtrade(path, market=market)
        except KlinehouseError as exc:
            summary.failures.append(str(exc))
            continue
        summary.fetched += df.height
        frames.append(df)
        if progress:
            progress(f"{path.name}: {df.height} rows")
    ingest(frames, summary, load=load, url=url, extra={"command": "import-freqtrade"})
    summary.seconds = time.monotonic() - started
    return summary


def import_freqtrade_dir(
    directory: str | Path, *, market: str, url: str | None = None
) -> LoadStats:
    """Import every freqtrade file of a directory through the lake into raw."""
    summary = import_freqtrade_run(directory, market=market, url=url)
    if summary.failures:
        raise KlinehouseError("; ".join(summary.failures))
    return summary.load
