"""End to end through the DAG code: klines_extract_load -> klines_transform -> model_training.

Runs the three DAGs in order with `dag.test()` (`app.demo.dags.run`,
the demo's path)
against the session's private PostgreSQL and S3 and the Binance stand-in serving
the real BTCUSDT/ETHUSDT 1h archives, in a fresh database and a fresh lake bucket.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app.orchestration import config
from app.orchestration.env import WAREHOUSE_CONN_ID, warehouse_conn_uri
from klinehouse.settings import Settings, get_settings

# the months of real BTCUSDT/ETHUSDT 1h archives in ../shared/data (ms in 2024, µs from 2025)
START = datetime(2024, 11, 1, tzinfo=UTC)
END = datetime(2025, 6, 1, tzinfo=UTC)
SERIES = "spot:BTCUSDT:1h,spot:ETHUSDT:1h"


@pytest.fixture
def pipeline_env(
    airflow_env: dict[str, str],
    dbt_manifest: Path,
    binance_standin: object,
    database_url: str,
    lake_settings: Settings,
    shared_data: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """The DAGs' warehouse (settings and the Airflow connection) is a fresh database."""
    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", database_url)
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}", warehouse_conn_uri(database_url)
    )
    monkeypatch.setenv("KLINEHOUSE_PIPELINE_SERIES", SERIES)
    monkeypatch.setenv("KLINEHOUSE_TRAINING_ITERATIONS", "150")
    monkeypatch.setenv("KLINEHOUSE_TASK_RETRIES", "0")  # fail fast: no backoff waits in a test
    get_settings(fresh=True)
    yield database_url
    get_settings(fresh=True)


_T0: list[datetime] = []  # when this test started: the metadata DB is shared by the session


def _asset_events(asset_name: str) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == asset_name, AssetEvent.timestamp >= _T0[-1])
            .order_by(AssetEvent.timestamp)
        ).all()
    return [dict(r[0] or {}) for r in rows]


@pytest.mark.slow
def test_three_dags_in_order_fill_raw_marts_and_the_registry(
    pipeline_env: str, capfd: pytest.CaptureFixture[str]
) -> None:
    from app.demo import dags as demo
    from app.orchestration.assets import CHAMPION_MODEL, MARTS, RAW_KLINES

    _T0.append(datetime.now(UTC))
    outcome = demo.run(START, END)
    summary = outcome.summary
    logged = capfd.readouterr()
    # publish read the mapped loads' lazy XCom sequence past its end, once per pass (issue 15)
    assert "XCom not found" not in logged.out + logged.err
    runs = {r.dag_id: r for r in summary.runs[:3]}
    assert [r.dag_id for r in summary.runs[:3]] == [
        "klines_extract_load",
        "klines_transform",
        "model_training",
    ]
    assert all(r.state == "success" for r in summary.runs), [
        (r.dag_id, r.failed_tasks) for r in summary.runs
    ]

    # extract/load: one mapped extract and load per configured series, every hour of the window
    extract_load = runs["klines_extract_load"]
    assert {t for t in extract_load.task_states if t.startswith("extract[")} == {
        "extract[0]",
        "extract[1]",
    }
    hours = int((END - START) / timedelta(hours=1))
    with psycopg.connect(pipeline_env) as conn:
        per_symbol = dict(
            conn.execute(
                "SELECT symbol, count(*) FROM raw.binance_klines"
                " WHERE market = 'spot' AND interval = '1h'"
                " AND open_time >= %s AND open_time < %s GROUP BY symbol",
                (START, END),
            ).fetchall()
        )
        outside = conn.execute(
            "SELECT count(*) FROM raw.binance_klines WHERE open_time < %s OR open_time >= %s",
            (START, END),
        ).fetchone()
        candles = conn.execute(
            "SELECT count(*) FROM marts.candles WHERE interval = '1h'"
        ).fetchone()
        features = conn.execute("SELECT count(*) FROM marts.candle_features").fetchone()
        registry = conn.execute(
            "SELECT version, status, status_reason FROM ml.model_registry"
            " ORDER BY created_at LIMIT 1"
        ).fetchall()
    assert per_symbol == {"BTCUSDT": hours, "ETHUSDT": hours}
    assert outside == (0,)
    published = extract_load.xcom["publish"]
    assert published["inserted"] == 2 * hours and published["changed"] == 2 * hours
    assert summary.raw_rows == 2 * hours

    # transform: every dbt model built and tested, then a passing gate
    transform = runs["klines_transform"]
    dbt_tasks = [t for t in transform.task_states if t.startswith("dbt.")]
    assert dbt_tasks and all(transform.task_states[t] == "success" for t in dbt_tasks)
    assert transform.xcom["quality_gate"]["success"] is True
    assert candles is not None and candles[0] == 2 * hours
    assert features is not None and features[0] > 0
    assert summary.mart_rows["candles"] == candles[0]

    # training: only after the gate; registered; the registry's rule decided, and
    # promote followed it (champion -> Asset event; rejected -> skipped, champion stays)
    from app.orchestration.pipeline import run_one

    training = runs["model_training"]
    assert training.task_states["quality_gate"] == "success"
    assert training.task_states["train[0]"] == "success"
    assert len(registry) == 1
    version, status, reason = registry[0]
    assert reason
    if status == "champion":
        assert training.task_states["promote[0]"] == "success"
        assert training.xcom["promote"][0]["champion"] == version
        assert summary.champion_version == version and outcome.forced is None
    else:
        # the rule said no: promote skipped; the demo then promoted a retrained model by hand
        assert status == "rejected"
        assert training.task_states["promote[0]"] == "skipped"
        assert outcome.forced is not None and outcome.forced.xcom["promote"][0]["forced"] is True
        assert summary.champion_version == outcome.forced.xcom["promote"][0]["champion"]
    events_before = len(_asset_events(CHAMPION_MODEL.name))
    assert events_before == 1

    # on demand, by hand: the next candidate becomes champion whatever the rule says
    forced = run_one("model_training", {"force_promote": True})
    assert forced.task_states["promote[0]"] == "success"
    assert forced.xcom["promote"][0]["forced"] is True
    new_version = forced.xcom["promote"][0]["champion"]
    assert new_version != version
    assert len(_asset_events(CHAMPION_MODEL.name)) == events_before + 1
    with psycopg.connect(pipeline_env) as conn:
        statuses = dict(conn.execute("SELECT version, status FROM ml.model_registry").fetchall())
    expected = {version: "retired" if status == "champion" else status, new_version: "champion"}
    if outcome.forced is not None:  # the demo's hand-promoted model, retired by the next one
        expected[outcome.forced.xcom["promote"][0]["champion"]] = "retired"
    assert statuses == expected

    # the Assets chained the DAGs and carry what happened
    raw_events = _asset_events(RAW_KLINES.name)
    assert len(raw_events) == 1 and raw_events[0]["inserted"] == 2 * hours
    assert len(_asset_events(MARTS.name)) == 1

    # a rerun of the same window changes nothing, and so triggers nothing
    again = run_one("klines_extract_load", {"start": START.isoformat(), "end": END.isoformat()})
    assert again.task_states["publish"] == "skipped"
    assert len(_asset_events(RAW_KLINES.name)) == 1
    with psycopg.connect(pipeline_env) as conn:
        assert conn.execute("SELECT count(*) FROM raw.binance_klines").fetchone() == (2 * hours,)
    assert config.series()[0].label == "spot:BTCUSDT:1h"
