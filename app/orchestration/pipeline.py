"""Run the three DAGs in order, in-process, with `dag.test()`: the demo's and the e2e test's path.

    klines_extract_load (window start..end) -> klines_transform -> model_training

`dag.test()` runs every task of one DAG run in this process, against the
metadata DB of the private AIRFLOW_HOME, with no scheduler or API server. It
returns normally even when a task failed, so each run's state is checked here
and a failed run stops the chain with the failed task ids.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from klinehouse.errors import KlinehouseError

DAG_ORDER = ("klines_extract_load", "klines_transform", "model_training")


class PipelineFailed(KlinehouseError):
    """A DAG run of the pipeline did not succeed; the message names the DAG and the failed tasks."""


@dataclass
class DagRunResult:
    dag_id: str
    run_id: str
    state: str
    seconds: float
    task_states: dict[str, str] = field(default_factory=dict)
    xcom: dict[str, Any] = field(default_factory=dict)

    @property
    def failed_tasks(self) -> list[str]:
        return sorted(t for t, s in self.task_states.items() if s not in {"success", "skipped"})


@dataclass
class PipelineSummary:
    runs: list[DagRunResult]
    raw_rows: int
    mart_rows: dict[str, int]
    champion_version: str | None

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.runs)

    def lines(self) -> list[str]:
        out = [
            f"{r.dag_id:<20} {r.state:<8} {r.seconds:6.1f}s  {len(r.task_states)} task instances"
            for r in self.runs
        ]
        out.append(f"raw.binance_klines: {self.raw_rows} rows")
        out += [f"marts.{name}: {rows} rows" for name, rows in self.mart_rows.items()]
        out.append(f"champion model: {self.champion_version or 'none'}")
        out.append(
            "Airflow UI with these runs: .venv/bin/klinehouse airflow  -> http://localhost:8080"
        )
        return out


def prepare_airflow(*, quiet: bool = False) -> dict[str, str]:
    """Apply the Airflow env of this KLINEHOUSE_HOME, migrate its metadata DB, write the dbt manifest.

    `quiet` keeps Airflow's and the tasks' INFO logs off the console (before airflow's import).
    """
    import os

    from app.orchestration.dbt import ensure_manifest
    from app.orchestration.env import apply_env, migrate_metadata_db
    from klinehouse.settings import get_settings

    if quiet:
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

    env = apply_env(database_url=get_settings(fresh=True).require_database_url())
    migrate_metadata_db()
    ensure_manifest()
    return env


def load_dags() -> dict[str, Any]:
    """The pipeline's DAGs, parsed from the dags folder (so that dag.test() finds them serialized)."""
    from airflow.dag_processing.dagbag import DagBag

    from app.orchestration.env import DAGS_FOLDER

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        detail = "; ".join(
            f"{path}: {err.strip().splitlines()[-1]}" for path, err in bag.import_errors.items()
        )
        raise PipelineFailed(f"DAG files failed to import: {detail}")
    missing = [d for d in DAG_ORDER if d not in bag.dags]
    if missing:
        raise PipelineFailed(f"DAGs not found in {DAGS_FOLDER}: {', '.join(missing)}")
    return {dag_id: bag.dags[dag_id] for dag_id in DAG_ORDER}


def run_dag(dag: Any, *, run_conf: dict[str, Any] | None = None) -> DagRunResult:
    """One `dag.test()` run; its state, duration, task states and the XCom of its last tasks."""
    t0 = time.monotonic()
    dag_run = dag.test(run_conf=run_conf)
    seconds = time.monotonic() - t0
    task_states: dict[str, str] = {}
    xcom: dict[str, Any] = {}
    mapped: dict[str, dict[int, Any]] = {}
    for ti in dag_run.get_task_instances():
        name = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        task_states[name] = str(ti.state.value if hasattr(ti.state, "value") else ti.state)
        if dag.get_task(ti.task_id).downstream_task_ids:
            continue
        if ti.map_index < 0:
            xcom[ti.task_id] = ti.xcom_pull(task_ids=ti.task_id, dag_id=dag.dag_id)
        else:  # a mapped last task: its values in map-index order (None where skipped)
            mapped.setdefault(ti.task_id, {})[ti.map_index] = ti.xcom_pull(
                task_ids=ti.task_id, dag_id=dag.dag_id, map_indexes=ti.map_index
            )
    for task_id, values in mapped.items():
        xcom[task_id] = [values[i] for i in sorted(values)]
    state = str(getattr(dag_run.state, "value", dag_run.state))
    return DagRunResult(dag.dag_id, dag_run.run_id, state, seconds, task_states, xcom)


def run_one(dag_id: str, run_conf: dict[str, Any] | None = None) -> DagRunResult:
    """One run of one pipeline DAG; raises PipelineFailed naming the failed tasks."""
    result = run_dag(load_dags()[dag_id], run_conf=run_conf)
    if result.state != "success":
        raise PipelineFailed(
            f"DAG {dag_id} run {result.run_id} ended {result.state}; "
            f"failed tasks: {', '.join(result.failed_tasks) or 'none recorded'}"
        )
    return result


def run_pipeline(
    *, start: datetime, end: datetime, force_promote: bool = False, quiet: bool = False
) -> PipelineSummary:
    """Extract-load [start, end), then transform, then training, each with `dag.test()`.

    Raises PipelineFailed at the first run that fails. `force_promote` makes the
    trained model champion even when the registry's rule rejects it (recorded as
    a promotion by hand), e.g. for a demo that must serve something; `quiet`
    keeps Airflow's INFO logs off the console.
    """
    prepare_airflow(quiet=quiet)
    confs: dict[str, dict[str, Any]] = {
        "klines_extract_load": {"start": start.isoformat(), "end": end.isoformat()},
        "model_training": {"force_promote": force_promote},
    }
    runs = [run_one(dag_id, confs.get(dag_id)) for dag_id in DAG_ORDER]
    return PipelineSummary(runs, *_warehouse_counts(), _champion_version())


def _warehouse_counts() -> tuple[int, dict[str, int]]:
    from klinehouse import db

    with db.connect() as conn:
        raw = conn.execute("SELECT count(*) FROM raw.binance_klines").fetchone()
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
            "ORDER BY table_name"
        ).fetchall()
        marts: dict[str, int] = {}
        for (name,) in tables:
            row = conn.execute(f'SELECT count(*) FROM marts."{name}"').fetchone()
            marts[name] = int(row[0]) if row else 0
    return (int(raw[0]) if raw else 0), marts


def _champion_version() -> str | None:
    """The champion of the first configured (market, interval) pair, if it has one."""
    from app.orchestration.config import training_specs
    from klinehouse import db
    from training.registry import champion_query

    first = training_specs()[0]
    # as the owner (the pipeline's own role), not the serving role champion_version() uses
    with db.connect() as conn:
        row = conn.execute(
            champion_query("version"), {"market": first["market"], "interval": first["interval"]}
        ).fetchone()
    return None if row is None else str(row[0])
