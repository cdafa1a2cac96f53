"""The demo's pipeline step: the three DAGs, in order, through `dag.test()`.

Pulls the configured series (default BTCUSDT and ETHUSDT 1h) for 2024-11-01 ..
2025-06-01 (the months of real archives in ../shared/data) from Binance when it answers, else from the local
stand-in; then dbt through cosmos, the quality gate, and training. When the
registry's rule rejects the model and there is no champion to serve yet, the
model is promoted by hand (recorded as such, and said here) so that the gRPC
step has something to serve.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from app.demo.output import say
from app.orchestration.pipeline import DagRunResult, PipelineSummary

START = datetime(2024, 11, 1, tzinfo=UTC)
END = datetime(2025, 6, 1, tzinfo=UTC)


@dataclass
class DemoOutcome:
    summary: PipelineSummary
    forced: DagRunResult | None  # the by-hand promotion, when the rule left no champion


def run(start: datetime = START, end: datetime = END) -> DemoOutcome:
    from app.orchestration.pipeline import run_one, run_pipeline
    from devstack.standin.fallback import binance_or_standin

    with binance_or_standin(lambda line: say(f"  {line}")):
        summary = run_pipeline(start=start, end=end, quiet=True)
        forced = None
        if summary.champion_version is None:
            say("  the registry's rule rejected the model and there is no champion yet:")
            forced = run_one("model_training", {"force_promote": True})
            # promote is mapped over the configured pairs: the first pair's is the summary's
            champion = forced.xcom["promote"][0]["champion"]
            say(f"  promoted by hand for the demo: {champion}")
            summary.runs.append(forced)
            summary.champion_version = str(champion)
    return DemoOutcome(summary, forced)


def step() -> None:
    """`make demo`: run the DAGs and print what they did."""
    outcome = run()
    for line in outcome.summary.lines():
        say(f"  {line}")
