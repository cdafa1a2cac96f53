"""The analyst's notebook runs, every cell, on a small real warehouse built the project's way
(archives imported through the lake into raw, then dbt), with fewer iterations and folds."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from app.notebook import execute, read
from klinehouse import db, paths
from klinehouse.errors import KlinehouseError
from klinehouse.settings import Settings, get_settings

NOTEBOOK = paths.REPO_ROOT / "notebooks" / "explore_and_model.py"
SMALL = {"ITERATIONS": 40, "FOLDS": 2, "EMBARGO_BARS": 12}


@pytest.fixture
def small_warehouse(
    database_url: str, lake_settings: Settings, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """BTCUSDT and ETHUSDT 1h for 2024-11..12, and BTCUSDT's 2023-03 with its real outage."""
    from extract.importers import import_archive
    from transform.runner import run_dbt

    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", database_url)
    get_settings(fresh=True)
    archive = shared_data / "binance" / "spot-archive"
    files = [archive / f"{s}-1h-2024-{m}.csv" for s in ("BTCUSDT", "ETHUSDT") for m in (11, 12)]
    files.append(shared_data / "binance" / "spot-archive-with-header" / "BTCUSDT-1h-2023-03.csv")
    stats = import_archive(files, market="spot", url=database_url)
    assert stats.inserted == 2 * (720 + 744) + 743
    run_dbt(["run"], database_url=database_url)
    return database_url


def _outputs(cell: Any, kind: str) -> list[Any]:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == kind]


def test_every_code_cell_follows_text_and_the_notebook_reads_settings() -> None:
    cells = read(NOTEBOOK).cells
    assert cells[0].cell_type == "markdown"
    for before, cell in itertools.pairwise(cells):
        if cell.cell_type == "code":
            assert before.cell_type == "markdown", (
                f"code cell without text before it:\n{cell.source}"
            )
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    assert "get_settings()" in code and "postgresql://" not in code
    for function in ("load_dataset", "walk_forward", "evaluate(", "calibration_curve"):
        assert function in code, function


def test_notebook_runs_on_the_warehouse(small_warehouse: str, tmp_path: Path) -> None:
    import nbformat

    notebook = execute(read(NOTEBOOK), cwd=tmp_path, parameters=SMALL, timeout=300)
    nbformat.write(notebook, tmp_path / "explore_and_model.ipynb")  # to look at after a failure
    code = [c for c in notebook.cells if c.cell_type == "code"]
    errors = [o for c in code for o in _outputs(c, "error")]
    assert not errors, errors
    assert all(c.get("execution_count") for c in code), "a cell did not run"
    images = [
        c
        for c in code
        if any("image/png" in o.get("data", {}) for o in _outputs(c, "display_data"))
    ]
    assert len(images) >= 9, f"{len(images)} cells drew a plot"
    text = "\n".join(o.get("text", "") for c in code for o in _outputs(c, "stream"))
    # It read this test's warehouse, found the real outage, and evaluated a model.
    assert f"warehouse: {db.describe(small_warehouse)}" in text
    # the 2023-03-24 13:00 outage, and the hours between the two periods loaded
    between = int((datetime(2024, 11, 1) - datetime(2023, 4, 1)).total_seconds() // 3600)
    assert f"2 gaps, {1 + between} missing bars in all" in text
    assert "shuffled-label AUC" in text and "all test windows: AUC" in text


def test_a_failing_cell_fails_the_run_with_its_error(tmp_path: Path) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("A cell that fails."),
            nbformat.v4.new_code_cell("raise ValueError('bad cell')"),
        ]
    )
    with pytest.raises(KlinehouseError, match=r"notebook cell failed: ValueError: bad cell"):
        execute(notebook, cwd=tmp_path, timeout=60)


def test_unknown_parameters_are_refused() -> None:
    with pytest.raises(KlinehouseError, match="not parameters of the notebook: ITERATONS"):
        execute(read(NOTEBOOK), cwd=paths.REPO_ROOT, parameters={"ITERATONS": 5})
