"""A DAG task failing on an S3 endpoint or database URL with credentials: Airflow logs the
exception it raises verbatim, so the task raises it masked (and without the chain). The load
task is called as the DAG defines it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.orchestration import tasks
from app.orchestration.masking import TaskFailed
from klinehouse.settings import get_settings


@pytest.fixture
def leaky_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KLINEHOUSE_S3_ENDPOINT_URL", "http://AKIAEXAMPLE:S3SECRET@127.0.0.1:1")
    monkeypatch.setenv("KLINEHOUSE_S3_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("KLINEHOUSE_S3_SECRET_ACCESS_KEY", "S3SECRETKEY")
    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", "postgresql+psycopg://u:DBSECRET@127.0.0.1:1/k")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    get_settings(fresh=True)
    yield
    monkeypatch.undo()
    get_settings(fresh=True)


def test_the_load_task_failing_on_s3_raises_a_masked_error(
    dagbag: Any, leaky_settings: None
) -> None:
    load = dagbag.dags["klines_extract_load"].get_task("load").python_callable  # mapped @task
    extracted = {"run_id": "no-such-run", "start": "2025-01-01T00:00:00+00:00"}
    with pytest.raises(TaskFailed) as info:
        load({**extracted, "end": "2025-01-02T00:00:00+00:00"})
    message = str(info.value)
    assert "S3SECRET" not in message and "http://AKIAEXAMPLE:***@127.0.0.1:1" in message
    assert message.startswith("EndpointConnectionError: ")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_gate_task_failing_on_the_database_url_raises_a_masked_error(
    leaky_settings: None,
) -> None:
    with pytest.raises(Exception) as info:
        tasks.quality_gate()
    assert "DBSECRET" not in str(info.value) and "u:***@127.0.0.1" in str(info.value)
