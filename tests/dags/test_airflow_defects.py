"""Airflow defects of issue 15: the API server on loopback only, DAGs that import without a
dbt manifest, no cosmos per-model Assets, and no "XCom not found" after a good extract-load."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

import pytest

from app.orchestration.env import DAGS_FOLDER

from .test_dagbag import _run_probe


def test_the_api_server_listens_on_loopback_only(airflow_env: dict[str, str]) -> None:
    from airflow.configuration import conf

    # `airflow api-server` (and standalone's) binds [api] host; Airflow's default is 0.0.0.0
    assert conf.get("api", "host") == "127.0.0.1"


def test_dags_import_without_a_dbt_manifest(airflow_env: dict[str, str], tmp_path: Path) -> None:
    probe = (
        "import json, os\n"
        f"os.environ['DBT_TARGET_PATH'] = {str(tmp_path / 'no-target')!r}\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(DAGS_FOLDER)!r})\n"
        "dag = bag.dags.get('klines_transform')\n"
        "message = ''\n"
        "if dag is not None:\n"
        "    try:\n"
        "        dag.get_task('dbt_manifest_missing').python_callable()\n"
        "    except Exception as exc:\n"
        "        message = f'{type(exc).__name__}: {exc}'\n"
        "print(json.dumps({'errors': {k: v[-300:] for k, v in bag.import_errors.items()},\n"
        "    'dags': sorted(bag.dag_ids), 'tasks': sorted(t.task_id for t in dag.tasks) if dag else [],\n"
        "    'message': message}))\n"
    )
    result = _run_probe(probe)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["errors"] == {}
    assert out["dags"] == ["klines_extract_load", "klines_transform", "model_training"]
    assert out["tasks"] == ["dbt_manifest_missing", "quality_gate"]
    assert out["message"].startswith("AirflowFailException: dbt manifest not found at")
    assert "klinehouse airflow" in out["message"]
    assert not (tmp_path / "no-target").exists()  # parsing wrote nothing


def test_cosmos_emits_no_per_model_assets(dagbag: Any) -> None:
    dag = dagbag.dags["klines_transform"]
    dbt_tasks = [t for t in dag.tasks if t.task_id.startswith("dbt.")]
    assert dbt_tasks
    for t in dbt_tasks:
        assert t.emit_datasets is False, t.task_id
        assert not t.outlets, (t.task_id, t.outlets)


class _LazyLoads(Sequence[Mapping[str, int]]):
    """Airflow's lazy XCom sequence as `publish` receives it: reading past the end is the
    request that Airflow logs as "[error] XCom not found"."""

    def __init__(self, items: list[dict[str, int]]) -> None:
        self.items = items
        self.missing_reads = 0

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, key: int) -> Mapping[str, int]: ...
    @overload
    def __getitem__(self, key: slice) -> Sequence[Mapping[str, int]]: ...
    def __getitem__(self, key: int | slice) -> Any:
        if isinstance(key, slice):
            return self.items[key]
        if key >= len(self.items):
            self.missing_reads += 1
            raise IndexError(key)
        return self.items[key]

    def __iter__(self) -> Iterator[Mapping[str, int]]:  # as LazyXComIterator: until IndexError
        index = 0
        while True:
            try:
                yield self[index]
            except IndexError:
                return
            index += 1


def test_publish_never_reads_past_the_mapped_loads(dagbag: Any) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    publish = dagbag.dags["klines_extract_load"].get_task("publish").python_callable
    loads = _LazyLoads([{"inserted": 0, "revised": 0, "unchanged": 5}] * 3)
    window = {"start": "2025-01-01T00:00:00+00:00", "end": "2025-01-02T00:00:00+00:00"}
    with pytest.raises(AirflowSkipException, match="no new or revised klines"):
        publish(loads, window)  # nothing changed: skipped before the Asset event is set
    assert loads.missing_reads == 0
