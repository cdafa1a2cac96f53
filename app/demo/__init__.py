"""`make demo`: run the whole pipeline on the embedded local stack.

By default the pipeline runs through the Airflow DAGs themselves (extract → load
→ dbt through cosmos → quality gate → training), as production runs it;
`--direct` runs the same stages one by one without Airflow (quicker to read).
The terminal shows the stage lines and results only; dbt's, Airflow's and the
libraries' logs go to `.klinehouse/logs/demo-<time>.log` (printed first), or to the
terminal too with `-v`.
A step that fails stops the demo with a non-zero exit, as a failed quality
gate must.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from app.demo.output import default_log_path, logs_to_file, say
from klinehouse.settings import get_settings


def _stack_up() -> None:
    from devstack.stack import stack_up
    from devstack.stack.manager import stack_status

    stack_up()
    for component, where, state in stack_status():
        say(f"  {component:<10} {state:<20} {where}")


def _extract() -> None:
    from app.demo.extract import step

    step()


def _stream() -> None:
    from app.demo.stream import run_demo

    run_demo(max_seconds=30)


def _transform() -> None:
    from app.demo.transform import step

    step()


def _validate() -> None:
    from app.demo.expectations import step

    step()


def _train() -> None:
    from app.demo.training import step

    step()


def _pipeline_through_dags() -> None:
    from app.demo.dags import step

    step()


def _grpc_advice() -> None:
    from app.demo.inference import step

    step()


Step = tuple[str, Callable[[], None]]
_STACK: Step = ("local stack (PostgreSQL + S3) and migrations", _stack_up)
_STREAM: Step = (
    "live candles: websocket stand-in -> raw + NOTIFY + lake, REST backfill (bounded)",
    _stream,
)
_GRPC: Step = ("gRPC service: advice and a prediction over gRPC", _grpc_advice)

STEPS: list[Step] = [
    _STACK,
    (
        "Airflow DAGs: extract + load -> dbt (cosmos) -> quality gate -> training",
        _pipeline_through_dags,
    ),
    _STREAM,
    _GRPC,
]
DIRECT_STEPS: list[Step] = [
    _STACK,
    ("extract + load BTCUSDT, ETHUSDT 1h (Binance, else the local stand-in)", _extract),
    _STREAM,
    ("warehouse: dbt build (staging -> intermediate -> marts, with tests)", _transform),
    ("quality gate: Great Expectations on raw and marts (failure stops here)", _validate),
    ("training: walk-forward evaluation vs baselines, report, registry", _train),
    _GRPC,
]


def run_steps(steps: list[Step], *, log: Path | None) -> bool:
    """Run `steps` in order, printing their stage lines; False at the first that fails.

    With `log`, everything the steps' libraries print (dbt, Airflow, GX, warnings, child
    processes) goes to that file and only the demo's own lines reach the terminal.
    """
    with logs_to_file(log) if log else nullcontext():
        if log:
            say(f"logs of dbt, Airflow and the libraries: {log} (-v shows them here)")
        for number, (title, step) in enumerate(steps, 1):
            say(f"[{number}/{len(steps)}] {title}", bold=True)
            t0 = time.monotonic()
            try:
                step()
            except Exception as exc:  # the demo reports any failure as one line, then stops
                say(f"demo stopped at step {number} ({title}): {exc}", fg="red", err=True)
                if log:
                    traceback.print_exc()  # into the log, beside what led to it
                    say(f"  details: {log}", err=True)
                return False
            say(f"  done in {time.monotonic() - t0:.1f}s")
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in {"-h", "--help"}:
        say("usage: python -m app.demo [--direct] [-v]\n\n" + (__doc__ or ""))
        return 0
    steps = DIRECT_STEPS if "--direct" in args else STEPS
    verbose = bool({"-v", "--verbose"} & set(args))
    started = time.monotonic()
    log = None if verbose else default_log_path()
    if not run_steps(steps, log=log):
        return 1
    settings = get_settings(fresh=True)
    say(f"\ndemo finished in {time.monotonic() - started:.0f}s", bold=True)
    say(f"  warehouse: {settings.database_url.split('@')[-1]}")
    say(f"  lake:      {settings.lake_uri} at {settings.s3_endpoint_url}")
    say('  shell:     eval "$(.venv/bin/klinehouse stack env)"; .venv/bin/klinehouse --help')
    say("  Airflow:   .venv/bin/klinehouse airflow   (starts the UI and prints its address)")
    say("  dbt docs:  .venv/bin/klinehouse docs      (lineage site on http://127.0.0.1:8580)")
    say("  gRPC:      .venv/bin/klinehouse serve, then klinehouse predict BTCUSDT / advise")
    if log:
        say(f"  logs:      {log}")
    say("  stop:      .venv/bin/klinehouse stack down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
