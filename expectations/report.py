"""The gate's verdict: which expectation failed on which table, how many rows, which keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Failure:
    table: str  # e.g. "raw.binance_klines" (schema as validated)
    suite: str
    expectation: str  # GX expectation type, e.g. "expect_compound_columns_to_be_unique"
    column: str | None  # the column(s) checked, when the expectation has them
    unexpected_count: int | None  # bad rows (series, for per-series checks); None if not a count
    sample_keys: tuple[dict[str, Any], ...]  # a few offending rows' keys (or values)
    detail: str = ""  # the observed value where there is no row count

    def describe(self) -> str:
        where = f"{self.table}" + (f".{self.column}" if self.column else "")
        count = "" if self.unexpected_count is None else f": {self.unexpected_count} bad rows"
        text = f"{where} {self.expectation}{count}"
        if self.detail:
            text += f" ({self.detail})"
        if self.sample_keys:
            text += "\n      e.g. " + "\n           ".join(_key_text(k) for k in self.sample_keys)
        return text


@dataclass(frozen=True)
class ValidationReport:
    success: bool
    failures: tuple[Failure, ...]
    evaluated: int  # expectations evaluated
    suites: tuple[str, ...]
    since: str | None
    as_of: str | None  # the run's clock when not the database's now()
    data_docs: Path | None  # index.html of the Data Docs site
    statistics: Mapping[str, Any] = field(default_factory=dict)
    run_name: str = ""  # the run in Data Docs: its suites and window (expectations.docs)

    def summary(self) -> str:
        window = f"since {self.since}" if self.since else "whole tables"
        if self.as_of:
            window += f", as of {self.as_of}"
        head = (
            f"quality gate {'PASSED' if self.success else 'FAILED'}: "
            f"{self.evaluated - len(self.failures)}/{self.evaluated} expectations met "
            f"on {', '.join(self.suites)} ({window})"
        )
        lines = [head, *(f"  FAIL {f.describe()}" for f in self.failures)]
        if self.data_docs:
            run = f" (run {self.run_name})" if self.run_name else ""
            lines.append(f"  Data Docs: {self.data_docs.as_uri()}{run}")
        return "\n".join(lines)


def _key_text(key: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_value_text(v)}" for k, v in key.items())


def _value_text(value: Any) -> str:
    iso = getattr(value, "isoformat", None)
    return iso() if callable(iso) else str(value)
