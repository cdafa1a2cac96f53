"""`klinehouse stack up|down|status|env`."""

from __future__ import annotations

import click

from devstack.stack import stack_down, stack_env, stack_status, stack_up


def _print_status() -> None:
    rows = stack_status()
    width = max(len(r[0]) for r in rows)
    for component, where, state in rows:
        click.echo(f"{component:<{width}}  {state:<20}  {where}")


@click.group()
def stack() -> None:
    """Run the embedded local stack: PostgreSQL and an S3 endpoint (moto)."""


@stack.command()
@click.option("--no-migrate", is_flag=True, help="Do not apply the warehouse migrations.")
def up(no_migrate: bool) -> None:
    """Start PostgreSQL and S3 (a no-op for what already runs) and migrate the warehouse.

    Parts configured through KLINEHOUSE_DATABASE_URL or KLINEHOUSE_S3_ENDPOINT_URL
    are used as given and not started.
    """
    stack_up(migrate=not no_migrate)
    _print_status()
    click.echo('\nfor other shells: eval "$(klinehouse stack env)"')


@stack.command()
def down() -> None:
    """Stop exactly what `stack up` started."""
    stopped = stack_down()
    click.echo("stopped: " + ", ".join(stopped) if stopped else "nothing of ours was running")


@stack.command()
def status() -> None:
    """Say what runs where."""
    _print_status()


@stack.command()
def env() -> None:
    """Print `export KLINEHOUSE_...=` lines for the running stack."""
    click.echo(stack_env(), nl=False)
