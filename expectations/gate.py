"""The data quality gate: run the GX checkpoint over the warehouse and report.

`validate()` is what training, promotion, `klinehouse validate`, the Airflow DAG
and `make demo` call; a report whose `.success` is False must stop them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

from great_expectations.core.run_identifier import RunIdentifier

from expectations import docs, project
from expectations.report import Failure, ValidationReport
from expectations.suites import SUITE_NAMES, SUITES, SuiteSpec
from expectations.window import AS_OF_SETTING, SINCE_SETTING
from klinehouse import db, paths, times
from klinehouse.envvars import temporary_environ
from klinehouse.errors import KlinehouseError
from klinehouse.settings import get_settings

_RELATIVE: Final = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS: Final = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_IDENTIFIER: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The run's connection strings live in os.environ while GX reads them: one run at a time
# per process (threads of one worker must not see each other's schemas or windows).
_RUN_LOCK: Final = threading.Lock()


def parse_since(
    value: str | datetime | date | None, *, now: datetime | None = None, what: str = "--since"
) -> datetime | None:
    """A window start: a datetime, a date, an ISO string, or a look-back like `1d`, `6h`, `2w`."""
    if value is None or isinstance(value, datetime):
        return times.assume_utc(value) if value else None
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = int(relative[1]), _UNITS[relative[2]]
        return (now or datetime.now(UTC)) - timedelta(**{unit: amount})
    try:
        return times.parse_utc(text)
    except ValueError:
        raise KlinehouseError(
            f"cannot read {what} {value!r}: give an ISO date or time (2025-05-01, "
            "2025-05-01T12:00Z) or a look-back such as 1d, 6h, 2w"
        ) from None


def validate(
    since: str | datetime | date | None = None,
    *,
    url: str | None = None,
    raw_schema: str = "raw",
    marts_schema: str = "marts",
    suites: Sequence[str] | None = None,
    home: Path | None = None,
    as_of: str | datetime | date | None = None,
) -> ValidationReport:
    """Validate the warehouse (rows with open_time >= `since`, or everything).

    `url` defaults to the settings' DATABASE_URL; the schemas let tests validate
    copies; `suites` limits the run (default: all of `SUITE_NAMES`). Data Docs are
    written under `home` (default KLINEHOUSE_HOME) in `quality/data_docs/`.
    `as_of` is the run's clock for "not in the future" and "stale" (default the
    database's now(); a replay or backfill passes its own time); a look-back
    `since` such as `1d` counts back from it.
    """
    clock = parse_since(as_of, what="--as-of")
    window = parse_since(since, now=clock)
    url = url or get_settings().require_database_url()
    chosen = _chosen_suites(suites)
    schemas = {"raw": _identifier(raw_schema), "marts": _identifier(marts_schema)}
    _require_tables(url, chosen, schemas)
    state = (home or paths.home()) / "quality"
    env = {
        project.CONNECTION_VARS[name]: _gx_url(url, schema, window, clock)
        for name, schema in schemas.items()
    }
    env[project.RESULTS_DIR_VAR] = str(state / "validations")
    env[project.DOCS_DIR_VAR] = str(state / "data_docs")
    run_name = docs.run_name(
        [spec.name for spec in chosen],
        every_suite=len(chosen) == len(SUITES),
        since=window,
        as_of=clock,
    )
    run_time = datetime.now(UTC)
    with _RUN_LOCK, temporary_environ(env):
        context = project.open_context()
        project.sync(context)
        if len(chosen) == len(SUITES):
            names = [project.CHECKPOINT]
        else:
            names = [project.suite_checkpoint(spec.name) for spec in chosen]
        try:
            run_id = RunIdentifier(run_name=run_name, run_time=run_time)
            results = [context.checkpoints.get(n).run(run_id=run_id) for n in names]
            project.build_docs(context, results)
        finally:
            _dispose_engines(context)
        report = _report(
            results, chosen, schemas, window, clock, state / "data_docs" / "index.html"
        )
        report = replace(report, run_name=run_name)
        docs.publish(report, run_time, state / "data_docs")  # while no other run writes the index
    return report


def _chosen_suites(names: Sequence[str] | None) -> list[SuiteSpec]:
    if not names:
        return list(SUITES)
    unknown = sorted(set(names) - set(SUITE_NAMES))
    if unknown:
        raise KlinehouseError(
            f"unknown suite(s) {', '.join(unknown)}: choose from {', '.join(SUITE_NAMES)}"
        )
    return [spec for spec in SUITES if spec.name in names]


def _identifier(schema: str) -> str:
    if not _IDENTIFIER.match(schema):
        raise KlinehouseError(f"invalid schema name {schema!r}: letters, digits and _ only")
    return schema


def _require_tables(url: str, chosen: list[SuiteSpec], schemas: dict[str, str]) -> None:
    """Name a missing table before GX buries it in a stack of SQL errors."""
    wanted = {
        f"{schemas[spec.datasource]}.{spec.table.split('.', 1)[1]}": spec.datasource
        for spec in chosen
    }
    with db.connect(url) as conn:
        missing = [
            name
            for name in sorted(wanted)
            if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone() == (None,)
        ]
    if missing:
        hint = ""
        if any(wanted[name] == "marts" for name in missing):
            hint = " (run `klinehouse transform` first, or choose suites with --suite)"
        raise KlinehouseError(
            f"cannot validate: {', '.join(missing)} missing in {db.describe(url)}{hint}"
        )


def _gx_url(url: str, schema: str, since: datetime | None, as_of: datetime | None) -> str:
    """SQLAlchemy URL whose sessions see `schema` first and carry the window and clock."""
    options = f"-c search_path={schema}"
    # The window's queries are small, but the per-hole probe of the candle_gaps view makes
    # the planner's estimate large enough to JIT-compile them (~0.4 s a query, more than
    # the query itself).
    options += " -c jit=off"
    # Always set (empty = whole table, now()): an inherited value must never scope a run.
    options += f" -c {SINCE_SETTING}={since.isoformat() if since else ''}"
    options += f" -c {AS_OF_SETTING}={as_of.isoformat() if as_of else ''}"
    separator = "&" if urlsplit(url).query else "?"
    return db.sqlalchemy_url(url) + f"{separator}options={quote(options, safe='')}"


def _dispose_engines(context: Any) -> None:
    """Close GX's pooled connections: a long-lived caller (Airflow) must not leak them."""
    for source in context.data_sources.all().values():
        engine = getattr(source, "_cached_engine", None) or getattr(source, "_engine", None)
        if engine is not None:
            engine.dispose()


def _report(
    results: list[Any],
    chosen: list[SuiteSpec],
    schemas: dict[str, str],
    since: datetime | None,
    as_of: datetime | None,
    docs_index: Path,
) -> ValidationReport:
    by_suite = {spec.name: spec for spec in chosen}
    failures: list[Failure] = []
    evaluated = 0
    suite_results = [r for result in results for r in result.run_results.values()]
    for suite_result in suite_results:
        spec = by_suite[suite_result.suite_name]
        table = f"{schemas[spec.datasource]}.{spec.table.split('.', 1)[1]}"
        for r in suite_result.results:
            evaluated += 1
            if not r.success:
                failures.append(_failure(r, spec.name, table))
    return ValidationReport(
        success=all(result.success for result in results),
        failures=tuple(failures),
        evaluated=evaluated,
        suites=tuple(spec.name for spec in chosen),
        since=since.isoformat() if since else None,
        as_of=as_of.isoformat() if as_of else None,
        data_docs=docs_index if docs_index.exists() else None,
        statistics={},
    )


def _failure(r: Any, suite: str, table: str) -> Failure:
    config = r.expectation_config
    kwargs = config.kwargs
    column = kwargs.get("column") or ", ".join(
        kwargs.get("column_list")
        or [c for c in (kwargs.get("column_A"), kwargs.get("column_B")) if c]
    )
    res: dict[str, Any] = dict(r.result or {})
    count = res.get("unexpected_count")
    samples: list[dict[str, Any]] = []
    detail = ""
    if "details" in res and "unexpected_rows" in (res["details"] or {}):
        # Our SQL checks: the count of offending rows and the rows themselves.
        count = res.get("observed_value")
        samples = [dict(row) for row in res["details"]["unexpected_rows"]]
    elif res.get("partial_unexpected_index_list"):
        samples = [dict(row) for row in res["partial_unexpected_index_list"]]
    elif res.get("partial_unexpected_list"):
        # Multi-column expectations list the offending rows' column values (the key, for
        # the compound uniqueness check); single columns list bare values.
        samples = [
            dict(v) if isinstance(v, dict) else {"value": v} for v in res["partial_unexpected_list"]
        ]
    elif "observed_value" in res:
        detail = f"observed {res['observed_value']!r}"
    error = _exception_message(r.exception_info)
    if error:
        detail = error
    return Failure(
        table=table,
        suite=suite,
        expectation=config.type,
        column=column or None,
        unexpected_count=count,
        sample_keys=tuple(samples[:5]),
        detail=detail,
    )


def _exception_message(info: Any) -> str:
    """GX's exception info: flat for an expectation, keyed by metric when a metric failed."""
    if not isinstance(info, dict):
        return ""
    entries = (
        [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    )
    for entry in entries:
        if entry.get("raised_exception"):
            lines = str(entry.get("exception_message") or "").strip().splitlines()
            return f"error: {lines[0][:300]}" if lines else "error"
    return ""


__all__ = ["Failure", "ValidationReport", "parse_since", "validate"]
