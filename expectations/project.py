"""The file-backed GX project in `expectations/gx/` and its synchronisation with `suites`.

The project is committed: data sources, assets, suites, validation definitions
and the checkpoint. Nothing in it is specific to one machine: the connection
strings are `${KLINEHOUSE_GX_RAW_URL}` / `${KLINEHOUSE_GX_MARTS_URL}` and the
validation results and Data Docs folders `${KLINEHOUSE_GX_RESULTS_DIR}` /
`${KLINEHOUSE_GX_DOCS_DIR}`, which the gate sets in its own process from the
settings for the length of a run. Secrets therefore never reach a file, and the
same project validates the user's schemas or a test's copies.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final

import great_expectations as gx
from great_expectations.core.batch_definition import BatchDefinition
from great_expectations.data_context import FileDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
)
from great_expectations.datasource.fluent import PostgresDatasource
from great_expectations.exceptions import DataContextError

from expectations.suites import KEY, SUITES, SuiteSpec

PROJECT_ROOT: Final = Path(__file__).resolve().parent  # gx.get_context adds the `gx/` folder
CONNECTION_VARS: Final = {"raw": "KLINEHOUSE_GX_RAW_URL", "marts": "KLINEHOUSE_GX_MARTS_URL"}
RESULTS_DIR_VAR: Final = "KLINEHOUSE_GX_RESULTS_DIR"
DOCS_DIR_VAR: Final = "KLINEHOUSE_GX_DOCS_DIR"
DOCS_SITE: Final = "klinehouse"
CHECKPOINT: Final = "quality_gate"
BATCH: Final = "rows"  # one batch definition per asset: the asset's rows (windowed by the query)

# Failures show up to this many keys of offending rows (GX's partial_unexpected lists).
RESULT_FORMAT: Final = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 5,
    "unexpected_index_column_names": KEY,
    "return_unexpected_index_query": False,
}


def open_context() -> FileDataContext:
    """The committed project; its `${…}` variables must be in the environment already."""
    # GX logs every connection test and store write at INFO: keep CLI output readable.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="file", project_root_dir=PROJECT_ROOT)
    assert isinstance(context, FileDataContext)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # CI logs
    return context


def sync(context: FileDataContext) -> None:
    """Make the project match `suites.SUITES`; writes only what changed."""
    validation_definitions = [_sync_spec(context, spec) for spec in SUITES]
    _add_or_replace(context.checkpoints, _checkpoint(CHECKPOINT, validation_definitions))
    # One checkpoint per suite too: a partial run (`--suite`) must not add checkpoints
    # to the committed project, which running an unsaved one would do.
    for definition in validation_definitions:
        _add_or_replace(
            context.checkpoints, _checkpoint(suite_checkpoint(definition.name), [definition])
        )


def suite_checkpoint(suite: str) -> str:
    return f"{CHECKPOINT}.{suite}"


def _checkpoint(name: str, definitions: list[gx.ValidationDefinition]) -> gx.Checkpoint:
    return gx.Checkpoint(
        name=name,
        validation_definitions=definitions,
        # No UpdateDataDocsAction: it rebuilds the site index once per suite; the gate
        # builds the run's pages and the index once (`build_docs`).
        actions=[],
        result_format=RESULT_FORMAT,
    )


def _sync_spec(context: FileDataContext, spec: SuiteSpec) -> gx.ValidationDefinition:
    batch = _batch_definition(context, spec)
    suite = gx.ExpectationSuite(name=spec.name, expectations=spec.expectations())
    suite = _add_or_replace(context.suites, suite)
    definition = gx.ValidationDefinition(name=spec.name, data=batch, suite=suite)
    return _add_or_replace(context.validation_definitions, definition)


def _datasource(context: FileDataContext, name: str) -> PostgresDatasource:
    try:
        found = context.data_sources.get(name)
    except (KeyError, ValueError, DataContextError):
        found = None
    if isinstance(found, PostgresDatasource):
        return found
    # The placeholder, not its value, is saved in great_expectations.yml.
    return context.data_sources.add_postgres(
        name=name, connection_string="${" + CONNECTION_VARS[name] + "}"
    )


def _batch_definition(context: FileDataContext, spec: SuiteSpec) -> BatchDefinition:
    source = _datasource(context, spec.datasource)
    table = spec.table.split(".", 1)[1]
    asset = next((a for a in source.assets if a.name == spec.asset), None)
    if asset is not None and (
        getattr(asset, "query", "") != spec.query or getattr(asset, "table_name", table) != table
    ):
        source.delete_asset(spec.asset)
        asset = None
    if asset is None and spec.query:
        asset = source.add_query_asset(name=spec.asset, query=spec.query)
    elif asset is None:
        # No schema_name: the session's search_path (set by the gate) chooses it.
        asset = source.add_table_asset(name=spec.asset, table_name=table)
    try:
        return asset.get_batch_definition(BATCH)
    except KeyError:
        return asset.add_batch_definition_whole_table(BATCH)


def _add_or_replace(factory, item):  # type: ignore[no-untyped-def]
    """Get-or-add: keep the stored object when it is equal, so the files do not churn."""
    try:
        stored = factory.get(item.name)
    except (DataContextError, KeyError, ValueError):
        return factory.add(item)
    if _same(stored, item):
        return stored
    factory.delete(item.name)
    return factory.add(item)


def _same(stored: object, item: object) -> bool:
    if isinstance(stored, gx.ExpectationSuite) and isinstance(item, gx.ExpectationSuite):
        return _without_ids(stored) == _without_ids(item)
    if isinstance(stored, gx.ValidationDefinition) and isinstance(item, gx.ValidationDefinition):
        return (stored.suite.id, stored.batch_definition.id) == (
            item.suite.id,
            item.batch_definition.id,
        )
    if isinstance(stored, gx.Checkpoint) and isinstance(item, gx.Checkpoint):
        return [v.id for v in stored.validation_definitions] == [
            v.id for v in item.validation_definitions
        ] and (stored.result_format, _actions(stored)) == (item.result_format, _actions(item))
    return False


def _actions(checkpoint: gx.Checkpoint) -> list[str]:
    return [f"{type(action).__name__}:{action.name}" for action in checkpoint.actions]


def _without_ids(suite: gx.ExpectationSuite) -> list[dict[str, Any]]:
    """The suite's expectations as configured; stored ones also carry generated ids."""
    found = []
    for expectation in suite.expectations:
        config = expectation.configuration.to_json_dict()
        config.pop("id", None)
        found.append(config)
    return found


def build_docs(context: FileDataContext, results: list[Any]) -> None:
    """Render this run's validation results and their suites, then the index, once."""
    identifiers: list[Any] = []
    for result in results:
        for identifier, suite_result in result.run_results.items():
            identifiers += [identifier, ExpectationSuiteIdentifier(name=suite_result.suite_name)]
    context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=identifiers)
