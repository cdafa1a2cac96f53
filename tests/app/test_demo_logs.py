"""`make demo` shows its stage lines and results only; dbt's, the libraries' and child
processes' output goes to the log file it names, or to the terminal with -v.

One small step (a real `dbt parse`, a library warning, a logger, a child process and a
result line), run through the demo's own step runner in a fresh interpreter whose stdout
and stderr are the "terminal".
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from klinehouse import paths

SCRIPT = textwrap.dedent(
    """
    import logging, subprocess, sys, warnings
    from pathlib import Path

    from app.demo import run_steps
    from app.demo.output import say
    from transform.runner import run_dbt

    logging.basicConfig(level=logging.INFO)  # as Airflow's and GX's loggers would

    def small_step():
        run_dbt(["parse"], database_url="postgresql://parser@127.0.0.1:1/parse_only")
        logging.getLogger("airflow.task").info("LIBRARY-LOG-LINE")
        warnings.warn("LIBRARY-WARNING")
        subprocess.run(["sh", "-c", "echo CHILD-PROCESS-LINE >&2"], check=True)
        say("  RESULT-LINE 42")

    def failing_step():
        raise RuntimeError("BROKEN-STEP")

    log = Path(sys.argv[1])
    ok = run_steps([("a small step", small_step)], log=log)
    failed = run_steps([("a failing step", failing_step)], log=log)
    say("=== verbose ===")
    say("=== verbose ===", err=True)
    run_steps([("a small step", small_step)], log=None)
    sys.exit(0 if ok and not failed else 3)
    """
)


def test_demo_keeps_library_output_in_its_log_file(tmp_path: Path) -> None:
    log = tmp_path / "home" / "logs" / "demo.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(paths.REPO_ROOT),
        "KLINEHOUSE_HOME": str(tmp_path / "home"),
        "DBT_TARGET_PATH": str(tmp_path / "dbt-target"),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(log)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    quiet, verbose = done.stdout.split("=== verbose ===")
    quiet_err, verbose_err = done.stderr.split("=== verbose ===")
    terminal = quiet + quiet_err

    # The terminal: the log's path, the stage line, the result, the timing, one failure line.
    assert f"logs of dbt, Airflow and the libraries: {log}" in quiet
    assert "[1/1] a small step" in quiet and "RESULT-LINE 42" in quiet and "done in" in quiet
    assert "demo stopped at step 1 (a failing step): BROKEN-STEP" in quiet_err
    assert f"details: {log}" in quiet_err
    for noise in ("Running with dbt", "LIBRARY-LOG-LINE", "LIBRARY-WARNING", "CHILD-PROCESS-LINE"):
        assert noise not in terminal, noise
    assert "Traceback" not in terminal

    # The log file holds all of it, the failure's traceback included.
    text = log.read_text()
    for noise in ("Running with dbt", "LIBRARY-LOG-LINE", "LIBRARY-WARNING", "CHILD-PROCESS-LINE"):
        assert noise in text, noise
    assert "Traceback" in text and "RuntimeError: BROKEN-STEP" in text
    assert "RESULT-LINE" not in text

    # -v: no log file, the same output straight on the terminal.
    assert "RESULT-LINE 42" in verbose and "logs of dbt" not in verbose
    shown = verbose + verbose_err
    assert "Running with dbt" in shown and "CHILD-PROCESS-LINE" in shown


def test_make_demo_entry_point_runs() -> None:
    """`make demo` runs `python -m app.demo`: the package must be runnable."""
    done = subprocess.run(
        [sys.executable, "-m", "app.demo", "--help"],
        env={**os.environ, "PYTHONPATH": str(paths.REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: python -m app.demo [--direct] [-v]" in done.stdout
