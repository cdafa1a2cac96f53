"""CLI commands of the extract package: extract, load, import-archive, import-freqtrade.

On a terminal each series gets a progress bar (rich); otherwise one plain line per
series. Every command ends with the run's summary. Exit code 1 when a symbol or
file failed (the others completed), 2 for an unusable command (bad interval,
unreachable database).
"""

from __future__ import annotations

import sys
from datetime import datetime
from types import TracebackType
from typing import Any

import click

from extract.summary import RunSummary
from klinehouse import klines, times


def _echo_summary(summary: RunSummary, title: str) -> None:
    from klinehouse import redact

    click.echo(f"{title}:")
    for line in summary.lines():
        click.echo(redact.mask(line))  # a failure may quote a database or S3 error
    if summary.failures:
        sys.exit(1)


def _log(line: str) -> None:
    from klinehouse import redact

    click.echo(redact.mask(line), err=True)


class RichProgress:
    """A bar per series on a terminal; plain lines (from the extractor's log) elsewhere."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[note]}"),
            console=Console(stderr=True),
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> RichProgress:
        self._progress.__enter__()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.__exit__(t, e, tb)

    def start(self, label: str, total: int | None) -> None:
        self._tasks[label] = self._progress.add_task(label, total=total, note="")

    def advance(self, label: str, rows: int) -> None:
        self._progress.advance(self._tasks[label], rows)

    def finish(self, label: str, message: str) -> None:
        task = self._tasks.get(label)
        if task is None:
            task = self._tasks[label] = self._progress.add_task(label, total=0, note="")
        # The estimate (grid candles) exceeds what gaps and the forming candle leave: close at 100 %.
        completed = self._progress.tasks[task].completed
        self._progress.update(task, total=completed, note=message)


def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return times.parse_utc(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date/time (use 2024-01-01 or 2024-01-01T12:00)", param_hint=option
        ) from None


_ACCEPT_REVISIONS = click.option(
    "--accept-revisions",
    is_flag=True,
    help="Load even when more than a few stored rows (or a close by > 1 %) would be revised.",
)


@click.command("extract")
@click.option("--market", type=click.Choice(klines.MARKETS), default="spot", show_default=True)
@click.option("--symbol", "symbols", multiple=True, help="Symbol, e.g. BTCUSDT (repeatable).")
@click.option("--quote", help="Discover symbols from exchangeInfo by quote asset, e.g. USDT.")
@click.option("--status", help="With --quote: only symbols in this status, e.g. TRADING.")
@click.option(
    "--interval", "intervals", multiple=True, required=True,
    help=f"Kline interval (repeatable): {', '.join(klines.INTERVALS)}.",
)  # fmt: skip
@click.option(
    "--start",
    help="First open_time (UTC), e.g. 2024-01-01. Default: resume after the newest stored candle.",
)
@click.option(
    "--end",
    help="End (UTC), exclusive: the bar opening at --end is not fetched. Default: now "
    "(closed candles only).",
)
@click.option(
    "--source", type=click.Choice(["auto", "rest", "archive"]), default="auto", show_default=True,
    help="auto: archives for whole past months, REST for the tail.",
)  # fmt: skip
@click.option(
    "--no-load", is_flag=True, help="Write the lake only; load later with `klinehouse load --run`."
)
@click.option("--dry-run", is_flag=True, help="Fetch and check only; write nothing.")
@click.option("--workers", type=click.IntRange(1, 64), default=8, show_default=True)
@_ACCEPT_REVISIONS
def extract_command(
    market: str,
    symbols: tuple[str, ...],
    quote: str | None,
    status: str | None,
    intervals: tuple[str, ...],
    start: str | None,
    end: str | None,
    source: str,
    no_load: bool,
    dry_run: bool,
    workers: int,
    accept_revisions: bool,
) -> None:
    """Fetch klines of any Binance market into the lake and raw.binance_klines."""
    from extract.extractor import Extractor, ExtractRequest
    from extract.rest import RestSource
    from klinehouse.errors import KlinehouseError

    chosen = [s.upper() for s in symbols]
    rest = RestSource(market)
    if quote or status:
        chosen += [s for s in rest.exchange_symbols(quote=quote, status=status) if s not in chosen]
    if not chosen:
        raise KlinehouseError("no symbols: give --symbol, or --quote/--status to discover them")
    request = ExtractRequest(
        market=market,
        symbols=chosen,
        intervals=list(intervals),
        start=_parse_time(start, "--start"),
        end=_parse_time(end, "--end"),
        source=source,  # type: ignore[arg-type]
        load=not no_load,
        dry_run=dry_run,
        accept_revisions=accept_revisions,
    )
    if sys.stderr.isatty():
        with RichProgress() as progress:
            summary = Extractor(request, progress=progress, workers=workers, rest=rest).run()
    else:
        summary = Extractor(request, log=_log, workers=workers, rest=rest).run()
    _echo_summary(summary, "extract")


@click.command("load")
@click.option("--run", "run_id", help="Load the objects a run wrote (its manifest).")
@click.option(
    "--prefix",
    help="Load every object under a lake prefix, e.g. klines/market=spot/symbol=BTCUSDT.",
)
def load_command(run_id: str | None, prefix: str | None) -> None:
    """Load parquet from the lake into raw.binance_klines (idempotent)."""
    import time

    from extract import lake_store
    from extract.importers import load_lake_objects
    from klinehouse.errors import KlinehouseError

    if bool(run_id) == bool(prefix):
        raise KlinehouseError("give exactly one of --run RUN_ID or --prefix LAKE_PREFIX")
    started = time.monotonic()
    keys = (
        lake_store.run_object_keys(run_id)
        if run_id
        else lake_store.prefix_object_keys(prefix or "")
    )
    if not keys:
        raise KlinehouseError(f"no parquet objects under lake prefix {prefix!r}")
    summary = RunSummary(run_id=run_id or "")
    summary.load = load_lake_objects(keys)
    summary.seconds = time.monotonic() - started
    _echo_summary(summary, f"load ({len(keys)} lake objects)")


@click.command("import-archive")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--market",
    type=click.Choice(klines.MARKETS),
    help="Default: from the path (futures/um, futures/cm), else spot.",
)
@click.option("--no-load", is_flag=True, help="Write the lake only.")
@_ACCEPT_REVISIONS
def import_archive_command(
    paths: tuple[str, ...], market: str | None, no_load: bool, accept_revisions: bool
) -> None:
    """Import data.binance.vision kline archives: files, directories or URLs (.csv/.zip).

    Each file loads whole or not at all; exit 1 names each file that failed and why."""
    from extract.importers import import_archive_run

    summary = import_archive_run(
        paths,
        market=market,
        load=not no_load,
        progress=_log,
        accept_revisions=accept_revisions,
    )
    _echo_summary(summary, "import-archive")


@click.command("import-freqtrade")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--market", type=click.Choice(klines.MARKETS), required=True)
@click.option("--no-load", is_flag=True, help="Write the lake only.")
@_ACCEPT_REVISIONS
def import_freqtrade_command(
    directory: str, market: str, no_load: bool, accept_revisions: bool
) -> None:
    """Import freqtrade data files (BTC_USDT-1h.json|feather|parquet) of a directory.

    Each file loads whole or not at all; exit 1 names each file that failed and why."""
    from extract.importers import import_freqtrade_run

    summary = import_freqtrade_run(
        directory,
        market=market,
        load=not no_load,
        progress=_log,
        accept_revisions=accept_revisions,
    )
    _echo_summary(summary, "import-freqtrade")
