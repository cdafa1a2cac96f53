"""docs/architecture.md's ER diagram is a copy of the warehouse's columns: keep it in step
with the migrations (raw, ml) and the dbt models' YAML (marts), attribute for attribute."""

from __future__ import annotations

import re

import yaml

from klinehouse import paths

DOC = paths.REPO_ROOT / "docs" / "architecture.md"
MIGRATIONS = paths.REPO_ROOT / "klinehouse" / "migrations"
MODELS = paths.REPO_ROOT / "dbt_project" / "models"

# diagram entity -> the relation whose every column it lists
FULL = {
    "RAW_BINANCE_KLINES": ("sql", "raw.binance_klines"),
    "ML_MODEL_REGISTRY": ("sql", "ml.model_registry"),
    "MARTS_CANDLES": ("dbt", "candles"),
    "MARTS_CANDLE_GAPS": ("dbt", "candle_gaps"),
    "MARTS_CANDLE_FEATURES": ("dbt", "candle_features"),
    "MARTS_CANDLE_LABELS": ("dbt", "candle_labels"),
}
# entities that show the key and what the model adds (their other columns are upstream's)
PARTIAL = {
    "STG_BINANCE__KLINES": "stg_binance__klines",
    "INT_KLINES_DEDUPLICATED": "int_klines_deduplicated",
    "INT_KLINES_RESAMPLED": "int_klines_resampled",
    "MARTS_CANDLE_FEATURES_LATEST": "candle_features_latest",
}
KEY = ["market", "symbol", "interval", "open_time"]


def diagram_entities() -> dict[str, list[tuple[str, bool]]]:
    """entity -> [(attribute, is PK)] of the erDiagram block."""
    (block,) = re.findall(r"```mermaid\nerDiagram\n(.*?)```", DOC.read_text(), re.DOTALL)
    entities = {}
    for name, body in re.findall(r"^\s*(\w+) \{\n(.*?)^\s*\}", block, re.DOTALL | re.MULTILINE):
        attrs = []
        for line in body.strip().splitlines():
            words = line.split('"')[0].split()
            attrs.append((words[1], "PK" in words[2:]))
        entities[name] = attrs
    return entities


def sql_columns(relation: str) -> list[str]:
    text = "\n".join(p.read_text() for p in sorted(MIGRATIONS.glob("*.sql")))
    match = re.search(
        rf"CREATE TABLE IF NOT EXISTS {re.escape(relation)} \((.*?)\n\);", text, re.DOTALL
    )
    assert match, f"no CREATE TABLE {relation} in the migrations"
    lines = [line.split("--")[0].strip() for line in match.group(1).splitlines()]
    # column lines start with a lower-case name; CONSTRAINT / CHECK lines do not
    created = [line.split()[0] for line in lines if re.match(r"[a-z_]+\s", line)]
    # and the columns later migrations add
    added = [
        column
        for alter in re.findall(rf"ALTER TABLE {re.escape(relation)}\s(.*?);", text, re.DOTALL)
        for column in re.findall(r"ADD COLUMN IF NOT EXISTS (\w+)", alter)
    ]
    return created + added


def dbt_columns() -> dict[str, list[str]]:
    columns = {}
    for path in MODELS.rglob("*.yml"):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []):
            columns[model["name"]] = [c["name"] for c in model.get("columns", [])]
    return columns


def test_full_entities_list_every_column_of_their_relation() -> None:
    entities, dbt = diagram_entities(), dbt_columns()
    for entity, (kind, relation) in FULL.items():
        real = sql_columns(relation) if kind == "sql" else dbt[relation]
        shown = [name for name, _ in entities[entity]]
        assert sorted(shown) == sorted(real), f"{entity} vs {relation}"


def test_keys_and_partial_entities_match_the_models() -> None:
    entities, dbt = diagram_entities(), dbt_columns()
    assert set(entities) == set(FULL) | set(PARTIAL)
    known = {c for cols in dbt.values() for c in cols} | set(sql_columns("raw.binance_klines"))
    for entity, model in PARTIAL.items():
        shown = {name for name, _ in entities[entity]}
        assert shown <= known | set(dbt[model]), f"{entity}: {shown - known}"
    for entity, attrs in entities.items():
        keys = [name for name, pk in attrs if pk]
        if entity == "ML_MODEL_REGISTRY":
            assert keys == ["version"]
        elif entity != "MARTS_CANDLE_GAPS":  # a view of runs of missing bars: no key
            assert keys == KEY, entity
