"""`make notebook`: write a jupytext notebook's `.ipynb` and run it on the configured warehouse.

The notebook reads the settings (KLINEHOUSE_* environment) as the CLI does; a cell
tagged `parameters` holds its knobs, which `execute(..., parameters=)` overrides with a
cell after it (as papermill does), e.g. fewer iterations in tests.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from klinehouse import paths
from klinehouse.envvars import temporary_environ
from klinehouse.errors import KlinehouseError

PARAMETERS_TAG = "parameters"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the kernel colours its tracebacks


def read(source: Path) -> Any:
    """The notebook of a jupytext `py:percent` file."""
    import jupytext

    if not source.is_file():
        raise KlinehouseError(f"{source}: no such notebook source")
    return jupytext.read(source)


def with_parameters(notebook: Any, parameters: Mapping[str, object]) -> Any:
    """A cell setting `parameters` right after the cell tagged `parameters`."""
    import nbformat

    cells = notebook.cells
    tagged = [i for i, c in enumerate(cells) if PARAMETERS_TAG in c.metadata.get("tags", [])]
    if not tagged:
        raise KlinehouseError(f"the notebook has no cell tagged {PARAMETERS_TAG!r}")
    unknown = [name for name in parameters if f"{name} =" not in cells[tagged[0]].source]
    if unknown:
        raise KlinehouseError(f"not parameters of the notebook: {', '.join(unknown)}")
    source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    cells.insert(tagged[0] + 1, cell)
    return notebook


def execute(
    notebook: Any, *, cwd: Path, parameters: Mapping[str, object] | None = None, timeout: int = 600
) -> Any:
    """Run every cell in a fresh kernel (this interpreter's); raises at the first failing cell."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    if parameters:
        notebook = with_parameters(notebook, parameters)
    # The kernel imports this checkout's packages, whatever the venv's editable install says.
    python_path = os.pathsep.join(
        p for p in (str(paths.REPO_ROOT), os.environ.get("PYTHONPATH")) if p
    )
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    with temporary_environ(
        {"PYTHONPATH": python_path, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    ):
        try:
            client.execute()
        except CellExecutionError as exc:
            text = _ANSI.sub("", str(exc))
            lines = [line for line in text.strip().splitlines() if line.strip()]
            raise KlinehouseError(f"notebook cell failed: {lines[-1] if lines else exc}") from exc
    return notebook


def build(source: Path, *, run: bool = True) -> Path:
    """Write `<source>.ipynb` beside `source` (executed unless `run` is False)."""
    import nbformat

    notebook = read(source)
    if run:
        notebook = execute(notebook, cwd=source.parent)
    target = source.with_suffix(".ipynb")
    nbformat.write(notebook, target)
    return target


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    run = "--no-execute" not in args
    sources = [Path(a) for a in args if not a.startswith("-")] or [
        paths.REPO_ROOT / "notebooks" / "explore_and_model.py"
    ]
    try:
        for source in sources:
            print(f"notebook: {build(source, run=run)}" + ("" if run else " (not executed)"))
    except KlinehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
