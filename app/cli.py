"""The `klinehouse` command line.

Subcommands live beside the code they drive and are imported only when run
(`LAZY_COMMANDS`), so `klinehouse --help` stays fast. Known failures
(unreachable database, bad settings, bad input, a database error) print one line
and exit 2; nothing but a bug prints a traceback. Every line printed or logged has
its credentials masked (`klinehouse.redact`).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from klinehouse import redact
from klinehouse.errors import KlinehouseError

# name -> "module:attribute" of a click command; each package registers its own line.
LAZY_COMMANDS: dict[str, str] = {
    "stack": "devstack.cli:stack",
    "extract": "extract.cli:extract_command",
    "load": "extract.cli:load_command",
    "import-archive": "extract.cli:import_archive_command",
    "import-freqtrade": "extract.cli:import_freqtrade_command",
    "db": "klinehouse.db_cli:db",
    "transform": "transform.cli:transform",
    "docs": "transform.cli:docs",
    "train": "training.cli:train",
    "models": "training.cli:models",
    "serve": "inference.cli:serve",
    "candles": "inference.cli:candles",
    "predict": "inference.cli:predict",
    "advise": "inference.cli:advise",
    "watch": "inference.cli:watch",
    "stream": "extract.stream.cli:stream",
    "airflow": "app.orchestration.cli:airflow",
    "validate": "expectations.cli:validate",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module_name, attr = LAZY_COMMANDS[cmd_name].split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                # the runtime images leave out the development stack (devstack)
                if exc.name != module_name.split(".")[0]:
                    raise
                raise click.UsageError(
                    f"`klinehouse {cmd_name}` is a development command: "
                    f"{exc.name} is not installed here"
                ) from None
            command = getattr(module, attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="klinehouse")
def cli() -> None:
    """klinehouse: a warehouse for Binance candles and the ML signals served from it.

    Settings come from KLINEHOUSE_* environment variables; without them the
    local stack started by `klinehouse stack up` is used.
    """


def _secrets() -> tuple[str, ...]:
    from klinehouse.settings import get_settings

    try:
        return redact.settings_secrets(get_settings())
    except Exception:  # unusable settings: the command reports them; patterns still mask
        return ()


def _service_failure(exc: BaseException) -> str | None:
    """'database' or 'S3' for an error of the warehouse's or the lake's client library."""
    psycopg = sys.modules.get("psycopg")  # only loaded when a command used the database
    if psycopg is not None and isinstance(exc, psycopg.Error):
        return "database"
    boto = sys.modules.get("botocore.exceptions")  # only loaded when a command used S3
    if boto is not None and isinstance(exc, boto.BotoCoreError | boto.ClientError):
        return "S3"
    return None


def main(argv: list[str] | None = None) -> Any:
    secrets = _secrets()
    redact.install_logging(secrets)
    try:
        return cli.main(args=argv, prog_name="klinehouse", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        masked = redact.mask(exc.format_message(), secrets)
        if masked == exc.format_message():
            exc.show()
        else:  # an option's value quoted a credential
            click.echo(f"Error: {masked}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KlinehouseError as exc:
        click.echo(f"klinehouse: {redact.mask(str(exc), secrets)}", err=True)
        sys.exit(2)
    except Exception as exc:
        failure = _service_failure(exc)
        if failure is not None:
            reason = redact.mask(redact.exception_text(exc), secrets)
            click.echo(f"klinehouse: {failure} error ({type(exc).__name__}): {reason}", err=True)
            sys.exit(2)
        # a bug: its traceback, masked like every other line
        click.echo(redact.mask(redact.traceback_text(exc), secrets), err=True, nl=False)
        sys.exit(1)
