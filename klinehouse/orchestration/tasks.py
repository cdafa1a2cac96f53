"""What the DAG tasks do: thin adapters from Airflow's context to the packages.

Each function takes and returns plain JSON values (series dicts, ISO times,
lake keys, counts), so XCom carries references and summaries, never rows.
Heavy packages are imported inside the functions: the DAG files import this
module only inside their tasks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from klinehouse.errors import KlinehouseError


class QualityGateFailed(KlinehouseError):
    """The marts did not pass the Great Expectations gate: nothing downstream may use them."""


def _utc(value: datetime | str) -> datetime:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
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


def extract_to_lake(series: Mapping[str, str], start: str, end: str) -> list[str]:
    """Pull one series' klines with open_time in [start, end) from Binance REST into the lake.

    Returns the lake keys written (one parquet object per UTC day; empty when the
    window holds no kline yet).
    """
    from extract import lake_store, rest
    from klinehouse.orchestration.config import Series

    checked = Series(**series).validate()
    frame = rest.fetch_klines(
        market=checked.market,
        symbol=checked.symbol,
        interval=checked.interval,
        start=_utc(start),
        end=_utc(end),
    )
    return [obj.key for obj in lake_store.write_frame(frame)]


def load_from_lake(lake_keys: Sequence[str] | None) -> dict[str, int]:
    """Upsert the rows of these lake objects into raw.binance_klines; the LoadStats as a dict."""
    from extract import lake_store
    from extract.load import load_frame

    if not lake_keys:
        return {"inserted": 0, "revised": 0, "unchanged": 0}
    stats = load_frame(lake_store.read_objects(list(lake_keys)))
    return {"inserted": stats.inserted, "revised": stats.revised, "unchanged": stats.unchanged}


def summarise_loads(
    stats: Sequence[Mapping[str, int]], window: Mapping[str, str]
) -> dict[str, Any]:
    """The counts of one extract-load run (the raw-klines Asset event's extra)."""
    total = {
        name: sum(int(s.get(name, 0)) for s in stats)
        for name in ("inserted", "revised", "unchanged")
    }
    return {
        **total,
        "changed": total["inserted"] + total["revised"],
        "series": len(stats),
        "start": window["start"],
        "end": window["end"],
    }


def quality_gate() -> dict[str, Any]:
    """Run the Great Expectations gate on the marts; raise QualityGateFailed when it fails."""
    from expectations.gate import validate

    report = validate()
    failures = [str(f) for f in getattr(report, "failures", [])]
    if not report.success:
        raise QualityGateFailed(
            f"quality gate failed ({len(failures)} failing expectations): "
            + "; ".join(failures[:5])
        )
    return {"success": True, "failures": failures}
