"""Airflow orchestration of klinehouse: the environment, the DAGs' task functions, the pipeline runner.

`run_pipeline(start=..., end=...)` runs the three DAGs of `dags/` in order with
`dag.test()` and returns a `PipelineSummary`; import it from
`app.orchestration.pipeline` (this package imports nothing heavy).
"""
