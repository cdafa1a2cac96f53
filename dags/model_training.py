"""model_training: quality gate -> train -> evaluate -> promote the CatBoost models.

Weekly (`KLINEHOUSE_TRAINING_SCHEDULE`) and on demand. Training starts only
after the Great Expectations gate passes on the current marts; evaluation is
walk-forward on data the model never saw, and promotion makes the candidate the
champion only when it beats the current one. The champion Asset is emitted on
promotion (the gRPC service serves the champion from the registry).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, task

from klinehouse.orchestration import config
from klinehouse.orchestration.assets import CHAMPION_MODEL, MARTS


@dag(
    dag_id="model_training",
    schedule=CronTriggerTimetable(config.training_schedule(), timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=config.default_args(),
    tags=["klinehouse", "ml", "catboost", "quality"],
    doc_md=__doc__,
)
def model_training() -> None:
    @task(inlets=[MARTS], retries=0)
    def quality_gate() -> dict[str, object]:
        """Refuse to train on marts that fail validation."""
        from klinehouse.orchestration import tasks

        return tasks.quality_gate()

    @task
    def train(gate: dict[str, object]) -> dict[str, object]:
        from klinehouse.orchestration import tasks

        return tasks.train_candidate()

    @task
    def evaluate(candidate: dict[str, object]) -> dict[str, object]:
        from klinehouse.orchestration import tasks

        return tasks.evaluate_candidate(candidate)

    @task(outlets=[CHAMPION_MODEL])
    def promote(evaluation: dict[str, object]) -> dict[str, object]:
        from klinehouse.orchestration import tasks

        return tasks.promote_candidate(evaluation)

    promote(evaluate(train(quality_gate())))


model_training()
