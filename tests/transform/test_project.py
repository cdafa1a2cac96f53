"""The dbt project agrees with klinehouse's one definition of each fact (no database)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from klinehouse import features, klines
from klinehouse.errors import KlinehouseError
from transform.runner import PROJECT_DIR, dbt_env, parse_manifest, run_dbt

MARTS = (
    "candles",
    "candle_gaps",
    "candle_features",
    "candle_labels",
    "candle_features_latest",
    "candles_live",
)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    target = tmp_path_factory.mktemp("dbt-target")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_TARGET_PATH", str(target))
        # `dbt parse` reads the profile but never connects.
        path = parse_manifest(database_url="postgresql://parser@127.0.0.1:1/parse_only")
    assert path == target / "manifest.json"
    return json.loads(path.read_text())


def test_interval_lengths_match_klines_py() -> None:
    text = (PROJECT_DIR / "macros" / "kline_intervals.sql").read_text()
    in_sql = {name: int(seconds) for name, seconds in re.findall(r'"(\w+)": (\d+)', text)}
    fixed = {
        name: int(length.total_seconds()) for name, length in klines.INTERVALS.items() if length
    }
    assert in_sql == fixed
    assert [name for name, length in klines.INTERVALS.items() if length is None] == ["1M"]


def test_feature_lookback_is_declared_once_and_is_the_formulas_reach() -> None:
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    assert project["vars"]["feature_lookback_bars"] == features.FEATURE_LOOKBACK_BARS
    sql_files = {
        p.relative_to(PROJECT_DIR).as_posix(): p.read_text() for p in PROJECT_DIR.rglob("*.sql")
    }
    users = [name for name, text in sql_files.items() if "var('feature_lookback_bars')" in text]
    assert sorted(users) == [
        "models/marts/candle_features.sql",
        "models/marts/candle_features_latest.sql",
    ]
    with_default = [n for n, t in sql_files.items() if re.search(r"feature_lookback_bars'\s*,", t)]
    assert with_default == [], "declare the var in dbt_project.yml only"
    # The reach of the formulas: the furthest lag of a close or an open time, and the
    # longest rolling window of one-bar returns (each needs one close more).
    macro = sql_files["macros/candle_features.sql"]
    lags = [int(n) for n in re.findall(r"lag\((?:close|open_time), (\d+)\)", macro)]
    windows = [int(n) + 1 for n in re.findall(r"rows between (\d+) preceding", macro)]
    assert lags and windows
    assert max(lags) == features.FEATURE_LOOKBACK_BARS >= max(windows)


def test_marts_schemas_grants_and_feature_columns(manifest: dict[str, Any]) -> None:
    nodes = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    for mart in MARTS:
        assert nodes[mart]["schema"] == "marts", mart
        assert "klinehouse_reader" in nodes[mart]["config"]["grants"]["select"], mart
    assert nodes["stg_binance__klines"]["schema"] == "staging"
    assert nodes["int_klines_deduplicated"]["schema"] == "intermediate"
    assert list(nodes["candle_features"]["columns"]) == [
        *klines.KEY,
        *features.NUMERIC_FEATURES,
        "ingested_at",
    ]
    assert set(features.LABELS) <= set(nodes["candle_labels"]["columns"])
    for mart in ("candle_features", "candle_labels"):
        assert nodes[mart]["config"]["materialized"] == "incremental"
    intervals = [
        n["test_metadata"]["kwargs"]["values"]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "test"
        and n.get("column_name") == "interval"
        and n.get("test_metadata", {}).get("name") == "accepted_values"
    ]
    assert intervals and all(values == list(klines.INTERVALS) for values in intervals)
    markets = [
        n["test_metadata"]["kwargs"]["values"]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "test"
        and n.get("column_name") == "market"
        and n.get("test_metadata", {}).get("name") == "accepted_values"
    ]
    assert len(markets) >= 2 and all(values == list(klines.MARKETS) for values in markets)


def _expected_columns(unit_test: dict[str, Any]) -> set[str]:
    rows = unit_test["expect"]["rows"]
    if isinstance(rows, str):
        return set(rows.strip().splitlines()[0].split(","))
    return {column for row in rows for column in row}


def test_every_feature_and_label_formula_has_a_unit_test(manifest: dict[str, Any]) -> None:
    covered: set[str] = set()
    for unit_test in manifest["unit_tests"].values():
        if unit_test["model"] in {"candle_features", "candle_labels"}:
            covered |= _expected_columns(unit_test)
    assert set(features.NUMERIC_FEATURES) | set(features.LABELS) <= covered


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(KlinehouseError, match="needs a dbt command"):
        run_dbt([])
    with pytest.raises(KlinehouseError, match="postgresql://user:password@host:port/dbname"):
        dbt_env("mysql://root@localhost/klines")
    env = dbt_env("postgresql://owner:p%40ss@db.example:6543/warehouse?sslmode=require")
    assert env["KLINEHOUSE_DBT_HOST"] == "db.example"
    assert env["KLINEHOUSE_DBT_PORT"] == "6543"
    assert env["DBT_ENV_SECRET_KLINEHOUSE_PASSWORD"] == "p@ss"
    assert env["KLINEHOUSE_DBT_SSLMODE"] == "require"
    assert Path(env["DBT_PROFILES_DIR"]) == PROJECT_DIR
