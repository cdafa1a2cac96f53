"""`klinehouse airflow`: Airflow standalone (UI, scheduler, dag-processor, triggerer) on the local stack.

`airflow standalone` is started in a session of its own (`setsid`) with SIGINT
restored (`env --default-signal=INT`: a background process otherwise ignores
it); Ctrl-C here, or SIGTERM, is forwarded as SIGINT to its whole process group,
which shuts scheduler, API server and workers down in ~12 s. SIGTERM to the
parent alone would orphan them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from types import FrameType

import click

STOP_TIMEOUT = 45.0


def _prepare(port: int | None) -> tuple[dict[str, str], int]:
    from app.orchestration.dbt import ensure_manifest
    from app.orchestration.env import airflow_env, migrate_metadata_db
    from devstack.stack import stack_up
    from devstack.stack._proc import free_port
    from klinehouse.settings import get_settings

    stack_up()
    settings = get_settings(fresh=True)
    api_port = port or free_port(8080)
    env = {
        **os.environ,
        **airflow_env(database_url=settings.require_database_url(), api_port=api_port),
    }
    click.echo(f"airflow home: {env['AIRFLOW_HOME']}")
    click.echo("migrating the Airflow metadata database (first time ~30 s) …")
    migrate_metadata_db(env)
    # The DAG processor runs in other processes: they read the manifest cosmos renders from.
    os.environ.setdefault("KLINEHOUSE_HOME", env["KLINEHOUSE_HOME"])
    ensure_manifest()
    return env, api_port


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        click.echo("airflow did not stop in time: terminating its process group", err=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@click.group(invoke_without_command=True)
@click.option(
    "--port", type=int, default=None, help="API server / UI port (default 8080, or a free one)."
)
@click.option(
    "--standin",
    is_flag=True,
    help="Serve the local Binance stand-in (../shared/data) to the DAGs, for offline runs.",
)
@click.pass_context
def airflow(ctx: click.Context, port: int | None, standin: bool) -> None:
    """Start Airflow standalone against the local stack (Ctrl-C stops it).

    The UI shows the klinehouse DAGs, their runs and their Assets. Log in as
    `admin`; the password is printed at start-up and kept in
    `<airflow home>/simple_auth_manager_passwords.json.generated`.
    """
    if ctx.invoked_subcommand is not None:
        return
    with contextlib.ExitStack() as stack:
        if standin:
            from devstack.standin.binance_rest import StandinThread, default_data_dir

            server = stack.enter_context(StandinThread(default_data_dir()))
            os.environ.update(server.env())
            click.echo(f"Binance stand-in for the DAGs: {server.url}")
        _run_standalone(port)


def _run_standalone(port: int | None) -> None:
    env, _ = _prepare(port)
    airflow_bin = shutil.which("airflow", path=env["PATH"])
    if not airflow_bin:
        raise click.ClickException("the `airflow` executable is not in the venv: run `make venv`")
    command = ["setsid", "env", "--default-signal=INT", airflow_bin, "standalone"]

    def forward(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Started in the background, this process may have inherited SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, forward)
    proc = subprocess.Popen(command, env=env)
    click.echo(f"airflow standalone: pid {proc.pid}, its own process group")
    click.echo(
        f"Airflow UI: {env['AIRFLOW__API__BASE_URL']}  "
        "(user admin; healthy after 30-70 s; Ctrl-C stops it)"
    )
    try:
        while proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo("\nstopping Airflow …")
        _stop_group(proc)
    sys.exit(proc.returncode if proc.returncode and proc.returncode > 0 else 0)


@airflow.command()
def env() -> None:
    """Print `export AIRFLOW_…=` lines, to use the `airflow` CLI on this home (e.g. `airflow dags list`)."""
    import shlex

    from app.orchestration.env import airflow_env
    from klinehouse.settings import get_settings

    database_url = get_settings(fresh=True).database_url or None
    for key, value in sorted(airflow_env(database_url=database_url).items()):
        click.echo(f"export {key}={shlex.quote(value)}")


@airflow.command("run-pipeline")
@click.option(
    "--start", required=True, help="window start, ISO 8601 UTC (e.g. 2025-03-01T00:00:00+00:00)"
)
@click.option("--end", required=True, help="window end, exclusive, ISO 8601 UTC")
@click.option(
    "--force-promote",
    is_flag=True,
    help="Make the trained model champion even if the rule rejects it.",
)
@click.option("--verbose", is_flag=True, help="Show Airflow's and the tasks' INFO logs.")
def run_pipeline_command(start: str, end: str, force_promote: bool, verbose: bool) -> None:
    """Run the three DAGs in order with dag.test(), in this process, on the local stack."""
    from app.orchestration.pipeline import run_pipeline
    from app.orchestration.tasks import extraction_window
    from klinehouse import times

    window = extraction_window(None, None, {"start": start, "end": end})
    summary = run_pipeline(
        start=times.parse_iso(window["start"]),
        end=times.parse_iso(window["end"]),
        force_promote=force_promote,
        quiet=not verbose,
    )
    for line in summary.lines():
        click.echo(line)
