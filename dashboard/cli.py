"""`klinehouse dashboard`: serve the Dash app on 127.0.0.1."""

from __future__ import annotations

import logging

import click

from klinehouse.db import connect
from klinehouse.settings import get_settings


@click.command("dashboard")
@click.option("--port", type=click.IntRange(1, 65535), default=8050, show_default=True)
def dashboard(port: int) -> None:
    """Browse candles, gaps, features, the champion's advice and the model registry
    (http://127.0.0.1:PORT; reads as the reader role when KLINEHOUSE_READER_DATABASE_URL is set)."""
    from dashboard.app import Warehouse, create_app

    settings = get_settings()
    url = settings.reader_url()
    connect(url).close()  # one clear line when the database is unreachable
    app = create_app(Warehouse.open(url, settings))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    click.echo(f"dashboard on http://127.0.0.1:{port}/", err=True)
    app.run(host="127.0.0.1", port=port, debug=False)
