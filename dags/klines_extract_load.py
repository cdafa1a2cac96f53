"""klines_extract_load: Binance REST -> parquet in the S3 lake -> raw.binance_klines.

One mapped task pair per configured (market, symbol, interval) series
(`app.orchestration.config`). Each run extracts its own data interval, so
catchup and `airflow dags backfill` fill history window by window; a manual run
may pass `start`/`end` (ISO 8601) to pull any window. Extract writes parquet to
the lake and hands the *lake key* to load through XCom, never the rows.
The raw-klines Asset is emitted once all loads of the run succeeded and at
least one row changed, which triggers `klines_transform`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from app.orchestration import config
from app.orchestration.assets import RAW_KLINES


@dag(
    dag_id="klines_extract_load",
    schedule=CronDataIntervalTimetable(config.extract_schedule(), timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=2,
    default_args=config.default_args(),
    tags=["klinehouse", "extract", "load", "binance"],
    params={
        "start": Param(
            None,
            type=["null", "string"],
            description="window start (ISO 8601, UTC); default: data_interval_start",
        ),
        "end": Param(
            None,
            type=["null", "string"],
            description="window end, exclusive (ISO 8601, UTC); default: data_interval_end",
        ),
    },
    doc_md=__doc__,
)
def klines_extract_load() -> None:
    @task
    def window() -> dict[str, str]:
        from app.orchestration import tasks

        ctx = get_current_context()
        # a run triggered without a logical date (API, UI "trigger") has no data interval
        return tasks.extraction_window(
            ctx.get("data_interval_start"), ctx.get("data_interval_end"), ctx["params"]
        )

    @task(max_active_tis_per_dagrun=4, map_index_template="{{ series_label }}")
    def extract(series: dict[str, str], window: dict[str, str]) -> dict[str, object]:
        """Klines of the window -> parquet in the lake; returns the run manifest's lake key."""
        from app.orchestration import tasks

        get_current_context()["series_label"] = ":".join(series.values())  # type: ignore[typeddict-unknown-key]
        return tasks.extract_to_lake(series, window["start"], window["end"])

    @task(max_active_tis_per_dagrun=2)
    def load(extracted: dict[str, object]) -> dict[str, int]:
        """The objects the manifest lists -> raw.binance_klines (COPY + upsert)."""
        from app.orchestration import tasks

        return tasks.load_run_window(extracted)

    @task(outlets=[RAW_KLINES])
    def publish(stats: list[dict[str, int]], window: dict[str, str]) -> dict[str, object]:
        """Emit the raw-klines Asset event (with the counts); skip it when nothing changed."""
        from airflow.sdk.exceptions import AirflowSkipException

        from app.orchestration import tasks

        # `stats` is a lazy sequence of the mapped loads' XComs: each iteration reads on until
        # an item is missing, which Airflow logs as "[error] XCom not found". One slice reads
        # them all in one request and never past the end.
        summary = tasks.summarise_loads(stats[:], window)
        if not summary["changed"]:
            raise AirflowSkipException(f"no new or revised klines in {window}: marts are current")
        get_current_context()["outlet_events"][RAW_KLINES].extra = summary
        return summary

    w = window()
    extracted = extract.partial(window=w).expand(series=[s.as_dict() for s in config.series()])
    publish(load.expand(extracted=extracted), w)


klines_extract_load()
