"""model_training: quality gate -> train -> evaluate -> promote, per (market, interval).

Weekly (`KLINEHOUSE_TRAINING_SCHEDULE`) and on demand. Training starts only
after the Great Expectations gate passes on the current marts; then train,
evaluate and promote are mapped (dynamic task mapping) over the configured
(market, interval) pairs (`KLINEHOUSE_PIPELINE_SERIES`): each pair has its own
champion. Evaluation is walk-forward on data the model never saw, and promotion
makes the candidate its pair's champion only when it beats that pair's current one
and the baselines (the registry's rule; a manual run may pass `force_promote`,
recorded as a promotion by hand). A rejected candidate skips its `promote`: no
champion Asset event from it, its pair's champion stays. The gRPC service serves
each pair's champion from the registry.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task

from app.orchestration import config
from app.orchestration.assets import CHAMPION_MODEL, MARTS


@dag(
    dag_id="model_training",
    schedule=CronTriggerTimetable(config.training_schedule(), timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=config.default_args(),
    tags=["klinehouse", "ml", "catboost", "quality"],
    params={
        "force_promote": Param(
            False,
            type="boolean",
            description="promote the candidate even when the rule rejects it (recorded as by hand)",
        ),
    },
    doc_md=__doc__,
)
def model_training() -> None:
    @task(inlets=[MARTS], retries=0)
    def quality_gate() -> dict[str, object]:
        """Refuse to train on marts that fail validation."""
        from app.orchestration import tasks

        return tasks.quality_gate()

    @task
    def train(gate: dict[str, object], spec: dict[str, object]) -> dict[str, object]:
        """Fit, evaluate walk-forward and register the candidate (`training.pipeline`)."""
        from app.orchestration import tasks

        return tasks.train_candidate(spec)

    @task
    def evaluate(candidate: dict[str, object]) -> dict[str, object]:
        from app.orchestration import tasks

        return tasks.evaluate_candidate(candidate)

    @task(outlets=[CHAMPION_MODEL])
    def promote(evaluation: dict[str, object]) -> dict[str, object]:
        """Make the candidate its pair's champion by the registry's rule; skipped (no Asset
        event) when it lost."""
        from airflow.sdk.exceptions import AirflowSkipException

        from app.orchestration import tasks

        force = bool(get_current_context()["params"].get("force_promote"))
        try:
            return tasks.promote_candidate(evaluation, force=force)
        except tasks.NotPromoted as exc:
            raise AirflowSkipException(str(exc)) from exc

    trained = train.partial(gate=quality_gate()).expand(spec=config.training_specs())
    promote.expand(evaluation=evaluate.expand(candidate=trained))


model_training()
