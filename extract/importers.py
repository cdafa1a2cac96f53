"""Imports of files users already have: Binance archives (local or URL) and freqtrade data.

Both go the way every extract goes: preprocess -> lake (day partitions, run
manifest) -> load from the lake into raw. Each file is loaded whole or not at all
(one transaction): a file that cannot be read, holds a corrupt row, fails its
checksum or would revise too much of the stored series (extract.revisions) is
reported by name and why, and contributes nothing; the others still load.
"""

from __future__ import annotations

import functools
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import psycopg

from extract import archive, freqtrade, lake_store, revisions
from extract.frames import collapse_duplicates, invariant_violations
from extract.load import LoadStats, conform, load_frame, load_frames, loader_url
from extract.revisions import Revision
from extract.summary import RunSummary
from klinehouse import db, klines
from klinehouse.errors import KlinehouseError
from klinehouse.settings import Settings, get_settings

Progress = Callable[[str], None]


def ingest_objects(
    df: pl.DataFrame,
    *,
    load: bool = True,
    url: str | None = None,
    settings: Settings | None = None,
    accept_revisions: bool = True,
    what: str = "load",
    revised: list[Revision] | None = None,
) -> tuple[list[lake_store.LakeObject], LoadStats]:
    """A preprocessed frame -> lake objects -> raw (unless load=False), in one transaction.

    Unless `accept_revisions`, a frame revising more than the guard allows
    (extract.revisions) is refused before anything is written: RevisionRefused.
    The rows it does revise are appended to `revised`.
    """
    settings = settings or get_settings()
    if df.is_empty():
        return [], LoadStats()
    if not load:
        return lake_store.write_frame(df, settings=settings), LoadStats()
    with db.connect(url or loader_url()) as conn:
        conn.execute("SET temp_buffers = '256MB'")  # before the session's first temp table
        found = revisions.find_revisions(conn, conform(df))
        reason = None if accept_revisions else revisions.refusal(found, df.height, what=what)
        if reason:
            raise revisions.RevisionRefused(reason)
        conn.commit()
        objects = lake_store.write_frame(df, settings=settings)
        # Read back what the lake holds, but only this batch's rows: the day/month objects
        # may also hold earlier rows, which are already loaded.
        stored = lake_store.read_objects([o.key for o in objects], settings)
        batch = stored.join(df.select(klines.KEY), on=list(klines.KEY), how="semi")
        with conn.transaction():  # the whole frame or nothing of it
            stats = load_frame(batch, conn=conn, batch_rows=max(batch.height, 1))
    if revised is not None:
        revised.extend(found)
    return objects, stats


def ingest_file(
    df: pl.DataFrame,
    summary: RunSummary,
    *,
    what: str,
    load: bool = True,
    url: str | None = None,
    settings: Settings | None = None,
    accept_revisions: bool = False,
) -> list[lake_store.LakeObject]:
    """One input (a file, a series) -> lake -> raw, whole or not at all; counted in `summary`."""
    df, dropped = collapse_duplicates(df)
    found: list[Revision] = []
    objects, stats = ingest_objects(
        df,
        load=load,
        url=url,
        settings=settings,
        accept_revisions=accept_revisions,
        what=what,
        revised=found,
    )
    summary.duplicates_collapsed += dropped
    summary.add_violations(invariant_violations(df))
    summary.written_to_lake += df.height
    summary.load = summary.load + stats
    summary.revisions += revisions.summary_lines(found)
    return objects


def _failure(source: str, exc: BaseException) -> str:
    """One line naming the input and why it failed (an unexpected error: its type too)."""
    if isinstance(exc, KlinehouseError):
        message = str(exc)
    else:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        message = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return message if source in message else f"{source}: {message}"


# Anything reading or loading one input can raise: it fails that input, not the run.
INPUT_ERRORS = (
    KlinehouseError,
    OSError,
    ValueError,
    TypeError,
    RecursionError,
    zipfile.BadZipFile,
    pl.exceptions.PolarsError,
    psycopg.Error,
)


def _import_each(
    sources: Iterable[tuple[str, Callable[[], pl.DataFrame]]],
    summary: RunSummary,
    *,
    load: bool,
    url: str | None,
    accept_revisions: bool,
    progress: Progress | None,
    command: str,
) -> RunSummary:
    """Read and ingest each input on its own: a bad one is listed, the others still load."""
    settings = get_settings()
    objects: list[lake_store.LakeObject] = []
    for source, read in sources:
        try:
            df = read()
            summary.fetched += df.height
            objects += ingest_file(
                df,
                summary,
                what=source,
                load=load,
                url=url,
                settings=settings,
                accept_revisions=accept_revisions,
            )
        except INPUT_ERRORS as exc:
            summary.failures.append(_failure(source, exc))
            if progress:
                progress(f"{source}: FAILED")
            continue
        if progress:
            progress(f"{source}: {df.height} rows")
    lake_store.write_manifest(summary.run_id, objects, {"command": command}, settings)
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
    df = archive.read_archive_csv(
        data, market=resolved, symbol=name.symbol, interval=name.interval, what=source
    )
    return df


def import_archive_run(
    paths: Iterable[str | Path],
    *,
    market: str | None = None,
    load: bool = True,
    url: str | None = None,
    progress: Progress | None = None,
    accept_revisions: bool = False,
) -> RunSummary:
    """Import archive CSVs/zips (files, directories or URLs), each whole or not at all;
    failures are listed, not fatal."""
    started = time.monotonic()
    summary = RunSummary(run_id=lake_store.new_run_id())
    sources = [
        (source, functools.partial(_read_one_archive, source, market))
        for source in _archive_inputs(paths)
    ]
    _import_each(
        sources,
        summary,
        load=load,
        url=url,
        accept_revisions=accept_revisions,
        progress=progress,
        command="import-archive",
    )
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
    accept_revisions: bool = False,
) -> RunSummary:
    """Import every freqtrade file of a directory, each whole or not at all."""
    started = time.monotonic()
    root = Path(directory)
    if not root.is_dir():
        raise KlinehouseError(f"{root}: not a directory")
    files = sorted(p for p in root.rglob("*") if p.suffix in freqtrade.SUFFIXES and p.is_file())
    if not files:
        raise KlinehouseError(f"{root}: no freqtrade data files (*.json, *.feather, *.parquet)")
    summary = RunSummary(run_id=lake_store.new_run_id())
    sources = [
        (str(path), functools.partial(freqtrade.read_freqtrade, path, market=market))
        for path in files
    ]
    _import_each(
        sources,
        summary,
        load=load,
        url=url,
        accept_revisions=accept_revisions,
        progress=progress,
        command="import-freqtrade",
    )
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
