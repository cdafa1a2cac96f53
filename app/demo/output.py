"""The demo's console: its stage lines and results on the terminal, everything else in a file.

`logs_to_file(path)` points the process's stdout and stderr (file descriptors 1 and 2,
so dbt, Airflow, library loggers, warnings and child processes alike) at a log file for
its duration; `say()` writes to the terminal saved beforehand. Outside it (`-v`, tests
of single steps) `say()` is click.secho on the current streams.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import click

from klinehouse import paths

_terminal: dict[str, TextIO] = {}  # "out" / "err" while logs go to a file


def say(message: str = "", *, err: bool = False, **style: Any) -> None:
    """One line of the demo's own output (click.secho's styles: fg=, bold=)."""
    stream = _terminal.get("err" if err else "out")
    if stream is None:
        click.secho(message, err=err, **style)
    else:
        click.secho(message, file=stream, color=stream.isatty(), **style)


def default_log_path(now: datetime | None = None) -> Path:
    """`<KLINEHOUSE_HOME>/logs/demo-<UTC time>.log`."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return paths.home() / "logs" / f"demo-{stamp}.log"


@contextmanager
def logs_to_file(path: Path) -> Iterator[Path]:
    """Send everything but `say()` to `path` (appended) until the block ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {"out": os.dup(1), "err": os.dup(2)}
    terminal = {
        name: os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")
        for name, fd in saved.items()
    }
    with path.open("a", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        _terminal.update(terminal)
        try:
            yield path
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            _terminal.clear()
            os.dup2(saved["out"], 1)
            os.dup2(saved["err"], 2)
            for fd in saved.values():
                os.close(fd)
            for stream in terminal.values():
                stream.close()
