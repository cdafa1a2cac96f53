"""What the DAG tasks do: thin adapters from Airflow's context to the packages.

Each function takes and returns plain JSON values (series dicts, ISO times,
lake keys, counts), so XCom carries references and summaries, never rows.
Heavy packages are imported inside the functions: the DAG files import this
module only inside their tasks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.orchestration.masking import masked
from klinehouse import times
from klinehouse.errors import KlinehouseError

if TYPE_CHECKING:
    from training.model_config import ModelConfig


class NotPromoted(KlinehouseError):
    """The trained candidate did not beat the champion and the baselines."""


class QualityGateFailed(KlinehouseError):
    """The marts did not pass the Great Expectations gate: nothing downstream may use them."""


def _utc(value: datetime | str) -> datetime:
    when = times.parse_iso(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        raise KlinehouseError(f"time {value!s} has no time zone: give it in UTC (…Z or +00:00)")
    return when.astimezone(UTC)


def extraction_window(
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    params: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The [start, end) window of klines (by open_time) a run extracts.

    The run's data interval, unless the run was triggered with `start`/`end`
    params (a manual backfill of any window).
    """
    params = params or {}
    start = params.get("start") or data_interval_start
    end = params.get("end") or data_interval_end
    if start is None or end is None:
        raise KlinehouseError(
            "the run has no data interval: trigger it with params start and end (ISO 8601, UTC)"
        )
    start_utc, end_utc = _utc(start), _utc(end)
    if end_utc <= start_utc:
        raise KlinehouseError(
            f"empty extraction window: end {end_utc} is not after start {start_utc}"
        )
    return {"start": start_utc.isoformat(), "end": end_utc.isoformat()}


@masked
def extract_to_lake(series: Mapping[str, str], start: str, end: str) -> dict[str, Any]:
    """Pull one series' klines with open_time in [start, end) from Binance into the lake.

    Whole past months come from the data.binance.vision archives, the rest from
    REST (`extract`'s `auto` source); still-forming candles are dropped. Writes
    day-partitioned parquet and a run manifest, loads nothing, and returns the
    manifest's lake key for the load task. A failure (unknown symbol, retries
    exhausted) raises, so that Airflow retries the task with backoff.
    """
    from app.orchestration.config import Series
    from extract.extractor import ExtractRequest, run_extract
    from extract.lake_store import RUNS_ROOT
    from klinehouse import lake

    checked = Series(**series).validate()
    window_start, window_end = _utc(start), _utc(end)
    summary = run_extract(
        ExtractRequest(
            market=checked.market,
            symbols=[checked.symbol],
            intervals=[checked.interval],
            start=window_start,
            end=window_end,  # extract's end is exclusive, like the window's
            source="auto",
            load=False,
        ),
        workers=4,
    )
    if summary.failures:
        raise KlinehouseError(f"extract {checked.label} failed: " + "; ".join(summary.failures))
    return {
        "series": checked.label,
        "run_id": summary.run_id,
        "manifest_key": lake.key(RUNS_ROOT, summary.run_id, "manifest.json"),
        "rows": summary.written_to_lake,
        "dropped_forming": summary.dropped_forming,
        "start": window_start.isoformat(),
        "end": window_end.isoformat(),
    }


@masked
def load_run_window(extracted: Mapping[str, Any]) -> dict[str, int]:
    """Upsert the rows an extract run wrote to the lake (its window only) into raw.binance_klines.

    Reads the run manifest named by the lake key, then its day objects, keeping
    the rows of the run's window (the day objects may hold earlier rows).
    """
    import polars as pl

    from extract import lake_store
    from extract.load import load_frame

    keys = lake_store.run_object_keys(str(extracted["run_id"]))
    if not keys:
        return {"inserted": 0, "revised": 0, "unchanged": 0}
    rows = lake_store.read_objects(keys).filter(
        pl.col("open_time").is_between(
            _utc(extracted["start"]), _utc(extracted["end"]), closed="left"
        )
    )
    stats = load_frame(rows)
    return {"inserted": stats.inserted, "revised": stats.revised, "unchanged": stats.unchanged}


def summarise_loads(
    stats: Sequence[Mapping[str, int]], window: Mapping[str, str]
) -> dict[str, Any]:
    """The counts of one extract-load run (the raw-klines Asset event's extra)."""
    total = dict.fromkeys(("inserted", "revised", "unchanged"), 0)
    series = 0
    for s in stats:  # once: a lazy XCom sequence costs a request per pass
        series += 1
        for name in total:
            total[name] += int(s.get(name, 0))
    return {
        **total,
        "changed": total["inserted"] + total["revised"],
        "series": series,
        "start": window["start"],
        "end": window["end"],
    }


def gate_since(event_extras: Sequence[Mapping[str, Any]]) -> str | None:
    """The earliest window start among the raw-klines events that triggered a transform.

    None (validate whole tables) when there is no event (a manual run) or one
    lacks its window.
    """
    starts = [extra.get("start") for extra in event_extras]
    if not starts or not all(isinstance(s, str) for s in starts):
        return None
    return min(_utc(str(s)) for s in starts).isoformat()


@masked
def quality_gate(since: str | None = None) -> dict[str, Any]:
    """Run the Great Expectations gate (rows from `since`, else whole tables).

    Raises QualityGateFailed, naming the failed expectations, when it fails.
    """
    from expectations.gate import validate

    report = validate(since)
    if not report.success:
        raise QualityGateFailed(report.summary())
    return {
        "success": True,
        "since": since,
        "evaluated": report.evaluated,
        "suites": list(report.suites),
        "data_docs": str(report.data_docs) if report.data_docs else None,
    }


def training_model_config() -> ModelConfig:
    """ModelConfig's defaults, with KLINEHOUSE_TRAINING_ITERATIONS / _THREADS when set."""
    from klinehouse.settings import get_settings
    from training.model_config import ModelConfig

    settings = get_settings(fresh=True)
    overrides: dict[str, Any] = {
        field: int(raw)
        for field, raw in (
            ("iterations", settings.training_iterations),
            ("thread_count", settings.training_threads),
        )
        if raw
    }
    return ModelConfig(**overrides)


@masked
def train_candidate(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Fit on the marts with walk-forward evaluation and register the candidate.

    `training.pipeline.train` registers the model and applies the promotion rule
    in one transaction (two trainings finishing together cannot both win); the
    evaluate and promote tasks report and publish that decision.
    """
    from training.dataset import DatasetSpec
    from training.evaluate import EvalConfig
    from training.pipeline import train

    model_config = training_model_config()
    result = train(
        DatasetSpec(spec["market"], spec["interval"], tuple(spec["symbols"])),
        model_config=model_config,
        eval_config=EvalConfig(),
        register=True,
    )
    return {
        "version": result.version,
        "status": result.status,
        "reason": result.reason,
        "artifact_uri": result.artifact_uri,
        "report": str(result.report),
    }


@masked
def evaluate_candidate(candidate: Mapping[str, Any]) -> dict[str, Any]:
    """The candidate's out-of-sample scores from the registry, against the baselines,
    the model chosen among the candidates and its selection-bias guards (None for a
    row stored before the candidates)."""
    from training.registry import get_model

    row = get_model(str(candidate["version"]))
    metrics = row.metrics
    guards = metrics.guards
    return {
        "version": candidate["version"],
        "status": row.status,
        "reason": row.status_reason,
        "log_loss": metrics.classifier.log_loss,
        "baseline_log_loss": {
            "majority": metrics.majority.log_loss,
            "momentum": metrics.momentum.log_loss,
        },
        "net_return": metrics.backtest.model.net_return,
        "buy_and_hold_net_return": metrics.backtest.buy_and_hold.net_return,
        "leakage_check_passed": metrics.leakage_check.passed if metrics.leakage_check else None,
        "chosen": metrics.chosen,
        "servable": metrics.servable,
        "sharpe": metrics.backtest.model.sharpe,
        "buy_and_hold_sharpe": metrics.backtest.buy_and_hold.sharpe,
        "guards": None
        if guards is None
        else {
            "deflated_sharpe": guards.deflated_sharpe.probability,
            "trials": guards.deflated_sharpe.trials,
            "pbo": guards.pbo.probability if guards.pbo else None,
            "bootstrap_lower": guards.bootstrap.lower,
            "bootstrap_confidence": guards.bootstrap.confidence,
        },
    }


@masked
def promote_candidate(evaluation: Mapping[str, Any], *, force: bool = False) -> dict[str, Any]:
    """Promote the candidate by the registry's rule (or by hand with `force`, recorded as such).

    Raises `NotPromoted` with the rule's reason when the candidate lost: the
    current champion stays.
    """
    from training.registry import promote

    registration = promote(str(evaluation["version"]), force=force)
    if registration.status != "champion":
        raise NotPromoted(f"model {evaluation['version']} not promoted: {registration.reason}")
    return {
        "champion": registration.version,
        "reason": registration.reason,
        "forced": force,
        "artifact_uri": registration.artifact_uri,
    }
