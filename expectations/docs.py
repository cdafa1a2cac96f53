"""The gate's Data Docs, readable offline and named after what each run checked.

GX renders the pages (with the project's own templates in
`gx/plugins/custom_data_docs/views/`: no CDN scripts or stylesheets, the index's table
rendered into the HTML); this module names each run after its suites and window, and
adds to the index what the CLI prints: the verdict and the failing rows' sample keys of
every gate run, newest first.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from expectations.report import ValidationReport

RUNS_DIR: Final = "gate_runs"  # beside index.html: one summary page (+ its record) per run
RUNS_KEPT: Final = 100  # as many as the index lists (validation_results_limit)
MARKER: Final = "<!-- klinehouse:gate-runs -->"  # in views/index_page.j2
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.+-]")


def run_name(
    suites: list[str], *, every_suite: bool, since: datetime | None, as_of: datetime | None
) -> str:
    """E.g. `raw_klines+candles__since-2025-05-01T000000Z__as-of-now`: safe in file names
    and links (GX stores each result under a folder of this name)."""
    checked = "quality_gate" if every_suite else "+".join(suites)
    window = f"since-{_stamp(since)}" if since else "whole-tables"
    clock = f"as-of-{_stamp(as_of)}" if as_of else "as-of-now"
    return _UNSAFE.sub("-", f"{checked}__{window}__{clock}")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H%M%SZ")


@dataclass(frozen=True)
class GateRun:
    run_name: str
    run_time: str  # ISO, UTC
    success: bool
    summary: str  # what the CLI printed: the verdict, each failure and its sample keys

    @property
    def page(self) -> str:
        return f"{RUNS_DIR}/{_UNSAFE.sub('-', self.run_time)}__{self.run_name}.html"


def publish(report: ValidationReport, run_time: datetime, docs_dir: Path) -> Path | None:
    """Write this run's summary page and list every kept run in the index; returns the index."""
    index = docs_dir / "index.html"
    if not index.exists():
        return None
    printed = [line for line in report.summary().splitlines() if "Data Docs:" not in line]
    run = GateRun(report.run_name, run_time.isoformat(), report.success, "\n".join(printed))
    folder = docs_dir / RUNS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (docs_dir / run.page).write_text(_run_page(run), encoding="utf-8")
    (docs_dir / run.page).with_suffix(".json").write_text(json.dumps(asdict(run)))
    runs = _kept_runs(folder)
    text = index.read_text(encoding="utf-8")
    if MARKER in text:
        index.write_text(text.replace(MARKER, _runs_block(runs), 1), encoding="utf-8")
    return index


def _kept_runs(folder: Path) -> list[GateRun]:
    records = sorted(folder.glob("*.json"), reverse=True)  # names start with the run time
    for old in records[RUNS_KEPT:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".html").unlink(missing_ok=True)
    return [GateRun(**json.loads(path.read_text())) for path in records[:RUNS_KEPT]]


def _verdict(run: GateRun) -> str:
    return "PASSED" if run.success else "FAILED"


def _runs_block(runs: list[GateRun]) -> str:
    if not runs:
        return ""
    newest = runs[0]
    rows = "\n".join(
        f'<tr><td class="gate-{_verdict(r).lower()}">{_verdict(r)}</td>'
        f"<td>{html.escape(r.run_time)}</td>"
        f'<td><a href="{html.escape(r.page)}">{html.escape(r.run_name)}</a></td></tr>'
        for r in runs
    )
    return (
        '<section class="ge-gate-runs">\n'
        f"<h2>Quality gate: latest run <code>{html.escape(newest.run_name)}</code></h2>\n"
        f"<pre>{html.escape(newest.summary)}</pre>\n"
        f"<h3>Gate runs ({len(runs)}, newest first)</h3>\n"
        "<table><thead><tr><th>Verdict</th><th>Run time</th><th>Run name</th></tr></thead>\n"
        f"<tbody>\n{rows}\n</tbody></table>\n"
        "<h3>Validation results by suite</h3>\n"
        "</section>"
    )


def _run_page(run: GateRun) -> str:
    title = f"quality gate {_verdict(run)}: {run.run_name}"
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='UTF-8'>"
        f"<title>{html.escape(title)}</title></head><body>\n"
        f"<p><a href='../index.html'>Data Docs home</a></p>\n<h1>{html.escape(title)}</h1>\n"
        f"<p>Run time {html.escape(run.run_time)}</p>\n<pre>{html.escape(run.summary)}</pre>\n"
        "</body></html>\n"
    )
