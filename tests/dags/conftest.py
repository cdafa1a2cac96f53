"""A private Airflow for the DAG tests: AIRFLOW_HOME inside the session's stack home.

Airflow reads its configuration once, at first import, so the environment is
applied before anything imports airflow, and stays for the whole session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from klinehouse.settings import Settings


@pytest.fixture(scope="session")
def airflow_env(stack: Settings) -> Iterator[dict[str, str]]:
    from app.orchestration.env import apply_env, migrate_metadata_db

    saved_path = os.environ.get("PATH", "")
    env = apply_env(database_url=stack.require_database_url())
    migrate_metadata_db()
    yield env
    for key in env:
        os.environ.pop(key, None)
    os.environ["PATH"] = saved_path


@pytest.fixture(scope="session")
def dbt_manifest(airflow_env: dict[str, str]) -> Path:
    from app.orchestration.dbt import ensure_manifest

    return ensure_manifest()


@pytest.fixture(scope="session")
def dagbag(airflow_env: dict[str, str], dbt_manifest: Path):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    from app.orchestration.env import DAGS_FOLDER

    return DagBag(dag_folder=str(DAGS_FOLDER))
