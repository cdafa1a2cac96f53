"""The series configuration, the extraction windows and the Airflow environment builder."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.orchestration import config
from app.orchestration.env import airflow_env, warehouse_conn_uri
from app.orchestration.tasks import extraction_window, summarise_loads, training_model_config
from klinehouse import paths
from klinehouse.errors import KlinehouseError


def test_series_parse_and_default() -> None:
    parsed = config.parse_series(" spot:btcusdt:1h , usdm:ETHUSDT:4h,")
    assert [s.label for s in parsed] == ["spot:BTCUSDT:1h", "usdm:ETHUSDT:4h"]
    assert parsed[0].as_dict() == {"market": "spot", "symbol": "BTCUSDT", "interval": "1h"}
    for s in config.parse_series(config.DEFAULT_SERIES):
        assert s.validate() is s


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("spot:BTCUSDT", "market:SYMBOL:interval"),
        ("", "no series"),
        ("spot:A:1h,spot:A:1h", "twice"),
    ],
)
def test_series_parse_errors_name_the_problem(spec: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        config.parse_series(spec)


def test_series_validate_rejects_unknown_market_and_interval() -> None:
    with pytest.raises(ValueError, match="unknown market 'margin'"):
        config.Series("margin", "BTCUSDT", "1h").validate()
    with pytest.raises(ValueError, match="unknown interval '7m'"):
        config.Series("spot", "BTCUSDT", "7m").validate()


def test_series_and_schedules_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLINEHOUSE_PIPELINE_SERIES", "coinm:BTCUSD_PERP:1d")
    monkeypatch.setenv("KLINEHOUSE_EXTRACT_SCHEDULE", "*/15 * * * *")
    monkeypatch.setenv("KLINEHOUSE_TASK_RETRIES", "5")
    assert config.series() == (config.Series("coinm", "BTCUSD_PERP", "1d"),)
    assert config.extract_schedule() == "*/15 * * * *"
    args = config.default_args()
    assert args["retries"] == 5 and args["retry_exponential_backoff"] == 2.0
    monkeypatch.setenv("KLINEHOUSE_TASK_RETRIES", "many")
    with pytest.raises(ValueError, match="KLINEHOUSE_TASK_RETRIES"):
        config.task_retries()


def test_training_specs_are_one_per_market_and_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "KLINEHOUSE_PIPELINE_SERIES",
        "spot:ETHUSDT:1h,spot:BTCUSDT:1h,spot:BTCUSDT:4h,usdm:BTCUSDT:1h",
    )
    assert config.training_specs() == [
        {"market": "spot", "interval": "1h", "symbols": ["BTCUSDT", "ETHUSDT"]},
        {"market": "spot", "interval": "4h", "symbols": ["BTCUSDT"]},
        {"market": "usdm", "interval": "1h", "symbols": ["BTCUSDT"]},
    ]


def test_training_overrides_fall_back_to_model_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from training.model_config import ModelConfig

    monkeypatch.delenv("KLINEHOUSE_TRAINING_ITERATIONS", raising=False)
    monkeypatch.delenv("KLINEHOUSE_TRAINING_THREADS", raising=False)
    assert training_model_config() == ModelConfig()
    monkeypatch.setenv("KLINEHOUSE_TRAINING_ITERATIONS", "150")
    monkeypatch.setenv("KLINEHOUSE_TRAINING_THREADS", "1")
    assert training_model_config() == ModelConfig(iterations=150, thread_count=1)


def test_extraction_window_is_the_data_interval_unless_params_say_otherwise() -> None:
    start, end = datetime(2025, 3, 1, 10, tzinfo=UTC), datetime(2025, 3, 1, 11, tzinfo=UTC)
    assert extraction_window(start, end, {"start": None, "end": None}) == {
        "start": "2025-03-01T10:00:00+00:00",
        "end": "2025-03-01T11:00:00+00:00",
    }
    backfill = extraction_window(
        start, end, {"start": "2025-02-01T00:00:00Z", "end": "2025-02-03T00:00:00+01:00"}
    )
    assert backfill == {"start": "2025-02-01T00:00:00+00:00", "end": "2025-02-02T23:00:00+00:00"}


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"start": "2025-02-01T00:00:00", "end": "2025-02-02T00:00:00Z"}, "no time zone"),
        (
            {"start": "2025-02-02T00:00:00Z", "end": "2025-02-01T00:00:00Z"},
            "empty extraction window",
        ),
    ],
)
def test_extraction_window_rejects_bad_params(params: dict[str, str], needle: str) -> None:
    with pytest.raises(KlinehouseError, match=needle):
        extraction_window(None, None, params)
    with pytest.raises(KlinehouseError, match="no data interval"):
        extraction_window(None, None, {})


def test_summarise_loads_counts_changes() -> None:
    window = {"start": "a", "end": "b"}
    summary = summarise_loads(
        [
            {"inserted": 3, "revised": 1, "unchanged": 2},
            {"inserted": 0, "revised": 0, "unchanged": 5},
        ],
        window,
    )
    assert summary == {
        "inserted": 3, "revised": 1, "unchanged": 7, "changed": 4, "series": 2, "start": "a", "end": "b",
    }  # fmt: skip
    assert summarise_loads([], window)["changed"] == 0


def test_airflow_env_lives_in_the_state_folder(tmp_path: Path) -> None:
    env = airflow_env(
        tmp_path, database_url="postgresql://u:p@127.0.0.1:5/kh", api_port=8099, base={}
    )
    home = Path(env["AIRFLOW_HOME"])
    assert home == tmp_path / "airflow"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(paths.REPO_ROOT / "dags")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{home / 'airflow.db'}"
    assert env["AIRFLOW__COSMOS__CACHE_DIR"].startswith(str(home))
    assert env["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] == "False"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"  # not Airflow's default 0.0.0.0
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:8099"
    assert env["AIRFLOW_CONN_KLINEHOUSE_WAREHOUSE"] == "postgres://u:p@127.0.0.1:5/kh"
    assert int(env["AIRFLOW__CORE__PARALLELISM"]) <= 8
    # the JWT secret: generated once, 64+ bytes, private, outside the repository
    secret_file = home / "jwt_secret"
    assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 64
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert (
        airflow_env(tmp_path, base={})["AIRFLOW__API_AUTH__JWT_SECRET"]
        == env["AIRFLOW__API_AUTH__JWT_SECRET"]
    )
    assert (
        not list(paths.REPO_ROOT.glob("jwt_secret"))
        and not (paths.REPO_ROOT / "dags" / "airflow.cfg").exists()
    )


def test_airflow_env_values_already_set_win(tmp_path: Path) -> None:
    base = {"AIRFLOW__CORE__EXECUTOR": "CeleryExecutor", "PATH": "/usr/bin"}
    env = airflow_env(tmp_path, base=base)
    assert "AIRFLOW__CORE__EXECUTOR" not in env
    assert env["PATH"].endswith(os.pathsep + "/usr/bin")
    assert warehouse_conn_uri("postgresql://a:b@h:1/d") == "postgres://a:b@h:1/d"


def test_gate_since_is_the_earliest_triggering_window() -> None:
    from app.orchestration.tasks import gate_since

    events = [{"start": "2025-03-01T10:00:00+00:00"}, {"start": "2025-03-01T08:00:00Z"}]
    assert gate_since(events) == "2025-03-01T08:00:00+00:00"
    assert gate_since([]) is None  # a manual run: whole tables
    assert gate_since([{"start": "2025-03-01T10:00:00+00:00"}, {}]) is None
