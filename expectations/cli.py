"""`klinehouse validate [--since …]`: the data quality gate on the warehouse."""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--since",
    help="Validate rows with open_time at or after this: ISO date/time (UTC) or a look-back "
    "such as 1d, 6h, 2w. Default: whole tables.",
)
@click.option(
    "--suite",
    "suites",
    multiple=True,
    help="Only these suites (repeatable); default all. See `expectations/suites.py`.",
)
@click.option(
    "--as-of",
    help="The run's clock for 'not in the future' and 'stale' (ISO, UTC); default now. "
    "For replays and backfills.",
)
@click.option("--raw-schema", default="raw", show_default=True, help="Schema of binance_klines.")
@click.option("--marts-schema", default="marts", show_default=True, help="Schema of the marts.")
def validate(
    since: str | None,
    suites: tuple[str, ...],
    as_of: str | None,
    raw_schema: str,
    marts_schema: str,
) -> None:
    """Run the Great Expectations checkpoint; exit 1 and name each failure when data is bad.

    Data Docs (HTML, readable offline) are written to
    <KLINEHOUSE_HOME>/quality/data_docs/index.html; each run is named after its suites and
    window (e.g. raw_klines__since-2025-05-01T000000Z__as-of-now) and the index shows
    what this command prints, the failing rows' keys included.
    """
    from expectations.gate import validate as run_gate

    report = run_gate(
        since,
        raw_schema=raw_schema,
        marts_schema=marts_schema,
        suites=suites or None,
        as_of=as_of,
    )
    click.echo(report.summary(), err=not report.success)
    if not report.success:
        # Exit 1, not the CLI's 2 for usage errors: the data, not the command, is wrong.
        raise click.exceptions.Exit(1)
