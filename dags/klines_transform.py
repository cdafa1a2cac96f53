"""klines_transform: raw.binance_klines -> dbt marts -> Great Expectations gate.

Scheduled on the raw-klines Asset that `klines_extract_load` emits. A cosmos
`DbtTaskGroup` renders one task per dbt model (`dbt build` of the model and its
tests) from the project's manifest; the quality gate then validates the marts,
and only a passing gate emits the marts Asset that training waits for.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task
from cosmos import DbtTaskGroup

from klinehouse.orchestration import config, dbt
from klinehouse.orchestration.assets import MARTS, RAW_KLINES


@dag(
    dag_id="klines_transform",
    schedule=[RAW_KLINES],
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=config.default_args(),
    tags=["klinehouse", "dbt", "cosmos", "quality"],
    doc_md=__doc__,
)
def klines_transform() -> None:
    marts = DbtTaskGroup(
        group_id="dbt",
        project_config=dbt.project_config(),
        profile_config=dbt.profile_config(),
        execution_config=dbt.execution_config(),
        render_config=dbt.render_config(),
        operator_args=dbt.operator_args(),
    )

    @task(outlets=[MARTS], retries=0)
    def quality_gate() -> dict[str, object]:
        """Validate the marts; a failure fails the run (no retry: the data, not the network, is wrong)."""
        from klinehouse.orchestration import tasks

        return tasks.quality_gate()

    marts >> quality_gate()


klines_transform()
