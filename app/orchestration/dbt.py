"""The cosmos configuration of the dbt project, defined once for the transform DAG.

cosmos renders the DAG from dbt's `manifest.json` (`LoadMode.DBT_MANIFEST`,
~0.3 s) rather than running `dbt ls` at every parse; `ensure_manifest()` writes
it with `dbt parse` when it is missing. Each model becomes one Airflow task
running `dbt build` for that model (its run and its tests: `TestBehavior.BUILD`),
invoked in-process through dbt's runner (one ~4 s dbt import per worker, not per
task). The profile comes from the Airflow connection `klinehouse_warehouse`
(`AIRFLOW_CONN_KLINEHOUSE_WAREHOUSE`), never from a file with credentials; the
sessions run in UTC (`PGTZ`), as `transform.runner` runs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.orchestration.env import WAREHOUSE_CONN_ID, venv_bin
from klinehouse.settings import get_settings
from transform.runner import PROJECT_DIR

if TYPE_CHECKING:
    from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig

PROFILE_NAME = "klinehouse"
TARGET_NAME = "airflow"


def manifest_path() -> Path:
    """dbt's manifest, under `<KLINEHOUSE_HOME>/dbt/target` (`transform.runner`)."""
    from transform.runner import manifest_path as dbt_manifest_path

    return dbt_manifest_path()


def ensure_manifest(*, force: bool = False) -> Path:
    """`dbt parse` (through `transform.runner`) when the manifest is missing, or `force`."""
    path = manifest_path()
    if force or not path.exists():
        from transform.runner import parse_manifest

        path = parse_manifest()
    if not path.exists():
        from klinehouse.errors import KlinehouseError

        raise KlinehouseError(f"`dbt parse` did not write {path}")
    return path


def has_manifest() -> bool:
    """Whether cosmos can render the dbt tasks (the DAG degrades to one failing task if not)."""
    return manifest_path().exists()


def missing_manifest_message() -> str:
    return (
        f"dbt manifest not found at {manifest_path()} when the DAG was parsed, so no dbt task "
        "was rendered: `klinehouse airflow` writes it (or `klinehouse docs`, or `dbt parse` in "
        "dbt_project/); the next parse of the DAG folder renders one task per model"
    )


def project_config() -> ProjectConfig:
    from cosmos import ProjectConfig

    if not has_manifest():
        from klinehouse.errors import KlinehouseError

        raise KlinehouseError(missing_manifest_message())
    return ProjectConfig(
        dbt_project_path=PROJECT_DIR,
        manifest_path=manifest_path(),
        project_name=PROFILE_NAME,
        install_dbt_deps=False,
    )


def profile_config() -> ProfileConfig:
    from cosmos import ProfileConfig
    from cosmos.profiles import PostgresUserPasswordProfileMapping

    return ProfileConfig(
        profile_name=PROFILE_NAME,
        target_name=TARGET_NAME,
        profile_mapping=PostgresUserPasswordProfileMapping(
            conn_id=WAREHOUSE_CONN_ID, profile_args={"schema": "marts"}
        ),
    )


def execution_config() -> ExecutionConfig:
    from cosmos import ExecutionConfig
    from cosmos.constants import InvocationMode

    return ExecutionConfig(
        dbt_executable_path=str(venv_bin() / "dbt"),
        invocation_mode=InvocationMode(get_settings(fresh=True).dbt_invocation),
    )


def render_config() -> RenderConfig:
    from cosmos import LoadMode, RenderConfig, TestBehavior

    return RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        test_behavior=TestBehavior.BUILD,
        dbt_executable_path=str(venv_bin() / "dbt"),
        # cosmos' per-model lineage Assets would be named after the warehouse's host:port and
        # cost ~3 s per task; the DAG emits its own `marts` Asset after the gate instead.
        # (Only RenderConfig turns them off: cosmos overrides `emit_datasets` in operator_args.)
        emit_datasets=False,
    )


def operator_args() -> dict[str, Any]:
    """Arguments of every cosmos dbt operator (no secrets: the password stays in the connection)."""
    return {
        "install_deps": False,
        "env": {"PGTZ": "UTC", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
    }
