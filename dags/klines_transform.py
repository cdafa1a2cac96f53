"""klines_transform: raw.binance_klines -> dbt marts -> Great Expectations gate.

Scheduled on the raw-klines Asset that `klines_extract_load` emits. A cosmos
`DbtTaskGroup` renders one task per dbt model (`dbt build` of the model and its
tests) from the project's manifest; the quality gate then validates the marts,
and only a passing gate emits the marts Asset that training waits for.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, get_current_context, task
from cosmos import DbtTaskGroup

from app.orchestration import config, dbt
from app.orchestration.assets import MARTS, RAW_KLINES


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
    @task(retries=0)
    def dbt_manifest_missing() -> None:
        """Stands in for the dbt tasks when the DAG was parsed without a dbt manifest."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(dbt.missing_manifest_message())

    marts = (
        DbtTaskGroup(
            group_id="dbt",
            project_config=dbt.project_config(),
            profile_config=dbt.profile_config(),
            execution_config=dbt.execution_config(),
            render_config=dbt.render_config(),
            operator_args=dbt.operator_args(),
        )
        if dbt.has_manifest()
        else dbt_manifest_missing()
    )

    @task(outlets=[MARTS], retries=0)
    def quality_gate() -> dict[str, object]:
        """Validate the rows the triggering loads brought (whole tables on a manual run).

        A failure fails the run and emits no marts Asset (no retry: the data, not the
        network, is wrong); model_training validates whole tables again before training.
        """
        from app.orchestration import tasks

        events = get_current_context()["triggering_asset_events"]
        extras = [dict(e.extra or {}) for e in events.get(RAW_KLINES, [])]
        return tasks.quality_gate(since=tasks.gate_since(extras))

    marts >> quality_gate()


klines_transform()
