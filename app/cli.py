"""The `klinehouse` command line.

Subcommands live beside the code they drive and are imported only when run
(`LAZY_COMMANDS`), so `klinehouse --help` stays fast. Known failures
(unreachable database, bad settings, bad input) print one line and exit 2;
nothing but a bug prints a traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

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
    "dashboard": "dashboard.cli:dashboard",
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


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="klinehouse", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KlinehouseError as exc:
        click.echo(f"klinehouse: {exc}", err=True)
        sys.exit(2)
