"""`klinehouse db upgrade|version`."""

from __future__ import annotations

import click

from klinehouse.db import describe
from klinehouse.migrate import current_version, upgrade
from klinehouse.settings import get_settings


@click.group()
def db() -> None:
    """Manage the warehouse schema."""


@db.command("upgrade")
def upgrade_cmd() -> None:
    """Apply pending SQL migrations (idempotent)."""
    url = get_settings().require_database_url()
    applied = upgrade(url)
    what = f"applied {', '.join(applied)}" if applied else "schema is up to date"
    click.echo(f"{what} ({describe(url)}, version {current_version(url)})")


@db.command("version")
def version_cmd() -> None:
    """Print the applied schema version."""
    click.echo(current_version())
