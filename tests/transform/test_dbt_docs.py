"""dbt docs a newcomer can read: the home page is ours, every column of every model and of the
source is described, as the built relations actually have them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from transform.runner import run_dbt


@pytest.fixture(scope="module")
def built(module_warehouse: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`dbt run` on an empty migrated warehouse; its manifest (descriptions from the yml)."""
    target = tmp_path_factory.mktemp("dbt-docs-target")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_TARGET_PATH", str(target))
        run_dbt(["run"], database_url=module_warehouse)
    return json.loads((Path(target) / "manifest.json").read_text())


def _relations(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """schema.name -> the manifest's node (models) or source table."""
    nodes = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    nodes += list(manifest["sources"].values())
    return {f"{n['schema']}.{n.get('alias') or n.get('identifier') or n['name']}": n for n in nodes}


def test_overview_block_replaces_dbts_welcome_page(built: dict[str, Any]) -> None:
    overview = built["docs"].get("doc.klinehouse.__overview__")
    assert overview is not None, "no {% docs __overview__ %} block in the project"
    text = overview["block_contents"]
    for topic in ("raw.binance_klines", "marts.candles", "klinehouse_reader", "SELECT"):
        assert topic in text, topic


def test_every_column_of_every_relation_is_described(
    built: dict[str, Any], module_warehouse: str, query: Callable[..., list[tuple]]
) -> None:
    relations = _relations(built)
    assert {"raw.binance_klines", "intermediate.int_klines_deduplicated", "marts.candles"} <= set(
        relations
    )
    actual: dict[str, list[str]] = {}
    for schema, table, column in query(
        module_warehouse,
        "SELECT table_schema, table_name, column_name FROM information_schema.columns"
        " WHERE table_schema || '.' || table_name = ANY(%s) ORDER BY ordinal_position",
        list(relations),
    ):
        actual.setdefault(f"{schema}.{table}", []).append(column)
    assert set(actual) == set(relations), "a model or the source was not built"
    undescribed = [
        f"{relation}.{column}"
        for relation, columns in actual.items()
        for column in columns
        if not (relations[relation]["columns"].get(column) or {}).get("description", "").strip()
    ]
    stale = [
        f"{relation}.{column}"
        for relation, node in relations.items()
        for column in node["columns"]
        if column not in actual[relation]
    ]
    assert not undescribed, f"columns without a description: {', '.join(undescribed)}"
    assert not stale, f"described columns the relation does not have: {', '.join(stale)}"
    described = [r for r, n in relations.items() if not n.get("description", "").strip()]
    assert not described, f"relations without a description: {', '.join(described)}"


def test_descriptions_reach_the_database_as_comments(
    built: dict[str, Any], module_warehouse: str, query: Callable[..., list[tuple]]
) -> None:
    """persist_docs: psql's \\d+ and any SQL client show the same descriptions."""
    rows = query(
        module_warehouse,
        "SELECT c.column_name, col_description(to_regclass('marts.candles'), c.ordinal_position)"
        " FROM information_schema.columns c"
        " WHERE c.table_schema = 'marts' AND c.table_name = 'candles'",
    )
    missing = [name for name, comment in rows if not comment]
    assert rows and not missing, missing
