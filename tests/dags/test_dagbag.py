"""DagBag integrity: the DAG files import, cleanly and lightly, with owners, tags, retries, Assets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from app.orchestration import config
from app.orchestration.env import DAGS_FOLDER

DAG_IDS = {"klines_extract_load", "klines_transform", "model_training"}
# Tasks that must not retry: a failing quality gate is wrong data, not a flaky network.
NO_RETRY = {"quality_gate"}
# Modules no DAG file may import at parse time (the scheduler parses every file every 30 s).
HEAVY = ("polars", "pyarrow", "catboost", "great_expectations", "boto3", "psycopg", "dbt.cli",
         "extract", "training", "expectations", "inference", "numpy", "sklearn")  # fmt: skip


def _run_probe(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter: only a new process shows what DAG parsing imports."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ},
        capture_output=True,
        text=True,
        check=False,
    )


def test_dag_files_import_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == DAG_IDS
    for path in DAGS_FOLDER.glob("*.py"):  # the scanner skips files without both words
        text = path.read_text().lower()
        assert "airflow" in text and "dag" in text, path


def test_every_dag_has_tags_an_owner_and_retries(dagbag: Any) -> None:
    for dag in dagbag.dags.values():
        assert "klinehouse" in dag.tags, dag.dag_id
        assert dag.doc_md, dag.dag_id
        assert dag.default_args["retries"] >= 1
        for task in dag.tasks:
            assert task.owner == config.OWNER, task.task_id
            if task.task_id.split(".")[-1] in NO_RETRY:
                assert task.retries == 0, task.task_id
            else:
                assert task.retries >= 1, task.task_id
                assert task.retry_exponential_backoff == 2.0, task.task_id
                assert task.max_retry_delay == config.MAX_RETRY_DELAY, task.task_id


def test_extract_maps_over_the_configured_series(dagbag: Any) -> None:
    dag = dagbag.dags["klines_extract_load"]
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    extract = dag.get_task("extract")
    assert isinstance(extract, MappedOperator)
    mapped = extract._get_specified_expand_input().value["series"]
    assert mapped == [s.as_dict() for s in config.series()]
    assert isinstance(dag.get_task("load"), MappedOperator)
    assert dag.timetable.__class__.__name__ == "CronDataIntervalTimetable"
    assert dag.catchup is False and dag.params["start"] is None


def test_assets_chain_extract_transform_training(dagbag: Any) -> None:
    from app.orchestration.assets import CHAMPION_MODEL, MARTS, RAW_KLINES

    extract_load = dagbag.dags["klines_extract_load"]
    transform = dagbag.dags["klines_transform"]
    training = dagbag.dags["model_training"]
    assert extract_load.get_task("publish").outlets == [RAW_KLINES]
    from airflow.sdk import AssetAll

    assert transform.timetable.asset_condition == AssetAll(RAW_KLINES)
    assert transform.get_task("quality_gate").outlets == [MARTS]
    assert training.get_task("quality_gate").inlets == [MARTS]
    assert training.get_task("promote").outlets == [CHAMPION_MODEL]
    # training starts only after the gate: gate -> train -> evaluate -> promote
    assert training.get_task("train").upstream_task_ids == {"quality_gate"}
    assert training.get_task("promote").upstream_task_ids == {"evaluate"}


def test_training_is_mapped_over_the_configured_pairs(dagbag: Any) -> None:
    """A champion per (market, interval): train, evaluate and promote run once per pair."""
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    training = dagbag.dags["model_training"]
    for task_id in ("train", "evaluate", "promote"):
        assert isinstance(training.get_task(task_id), MappedOperator), task_id
    specs = training.get_task("train")._get_specified_expand_input().value["spec"]
    assert specs == config.training_specs()


def test_transform_has_one_dbt_task_per_model_before_the_gate(
    dagbag: Any, dbt_manifest: Path
) -> None:
    manifest = json.loads(dbt_manifest.read_text())
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    dag = dagbag.dags["klines_transform"]
    dbt_tasks = {t.task_id for t in dag.tasks if t.task_id.startswith("dbt.")}
    assert {
        t.split(".")[1].removesuffix("_build").removesuffix("_model") for t in dbt_tasks
    } >= models
    assert len(dbt_tasks) == len(models)
    gate_upstream = dag.get_task("quality_gate").get_flat_relative_ids(upstream=True)
    assert dbt_tasks <= gate_upstream


def test_dag_files_do_not_import_heavy_modules(
    airflow_env: dict[str, str], dbt_manifest: Path
) -> None:
    probe = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(DAGS_FOLDER)!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted({m for m in sys.modules if m.split('.')[0] in heavy or m in heavy})))\n"
    )
    result = _run_probe(probe)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == [], f"DAG files import heavy modules at parse time: {loaded}"


def test_bad_series_config_is_an_import_error_naming_it(
    airflow_env: dict[str, str], dbt_manifest: Path
) -> None:
    probe = (
        "import os\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "for bad in ('spot:BTCUSDT', 'spot:X:1h,spot:X:1h'):\n"
        "    os.environ['KLINEHOUSE_PIPELINE_SERIES'] = bad\n"
        f"    bag = DagBag(dag_folder={str(DAGS_FOLDER / 'klines_extract_load.py')!r})\n"
        "    print('RESULT', list(bag.import_errors.values())[0].strip().splitlines()[-1])\n"
    )
    result = _run_probe(probe)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 2, result.stdout + result.stderr[-1000:]
    assert (
        "expected market:SYMBOL:interval" in lines[0] and "KLINEHOUSE_PIPELINE_SERIES" in lines[0]
    )
    assert "twice" in lines[1]
