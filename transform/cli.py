"""`klinehouse transform` (dbt build) and `klinehouse docs` (dbt's lineage site)."""

from __future__ import annotations

import click

from transform.runner import run_dbt, target_dir


@click.command()
@click.option("--full-refresh", is_flag=True, help="Rebuild the incremental marts from scratch.")
@click.option(
    "--select",
    "-s",
    "select",
    multiple=True,
    metavar="SELECTOR",
    help="dbt node selection (repeatable or space-separated), e.g. `+candle_features marts`.",
)
def transform(full_refresh: bool, select: tuple[str, ...]) -> None:
    """Build and test the warehouse: staging, intermediate and marts (dbt build)."""
    args = ["build"]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", *(part for value in select for part in value.split())]
    run_dbt(args)
    click.echo("transform: dbt build succeeded")


@click.command()
@click.option("--port", default=8580, show_default=True, help="Port of the docs site.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--no-serve", is_flag=True, help="Only generate the site (into dbt's target dir).")
def docs(port: int, host: str, no_serve: bool) -> None:
    """Generate dbt's documentation site (models, columns, lineage graph) and serve it."""
    run_dbt(["docs", "generate"])
    click.echo(f"docs: generated in {target_dir()}")
    if no_serve:
        return
    click.echo(f"docs: serving on http://{host}:{port} (Ctrl-C stops)")
    run_dbt(["docs", "serve", "--port", str(port), "--host", host, "--no-browser"])
