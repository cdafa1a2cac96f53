"""The Airflow environment of klinehouse: one private AIRFLOW_HOME per KLINEHOUSE_HOME.

Airflow reads its configuration once, at import, from `AIRFLOW_HOME` and
`AIRFLOW__SECTION__KEY` variables; importing it without `AIRFLOW_HOME` silently
creates `~/airflow`. Everything Airflow needs is therefore computed here, as a
dict of environment variables, and applied before the first `import airflow`:

- `AIRFLOW_HOME` = `<KLINEHOUSE_HOME>/airflow` (git-ignored state, never the repo);
- the dags folder = `<repo>/dags`; SQLite metadata DB + LocalExecutor (standalone);
- the API server bound to 127.0.0.1 (Airflow's default is every interface, 0.0.0.0);
- cosmos' cache under AIRFLOW_HOME and its telemetry off (it fails offline);
- a JWT secret generated once into the state folder (mode 0600);
- the warehouse as the Airflow connection `AIRFLOW_CONN_KLINEHOUSE_WAREHOUSE`,
  derived from `KLINEHOUSE_DATABASE_URL` (or the running local stack) at run time.

Values already present in the environment win, so a deployment (k8s, Astro)
configures Airflow its own way and this module only fills the gaps.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from klinehouse import paths

WAREHOUSE_CONN_ID = "klinehouse_warehouse"
# The API server (and UI) listens on this machine only; a deployment sets AIRFLOW__API__HOST.
API_HOST = "127.0.0.1"
DAGS_FOLDER = paths.REPO_ROOT / "dags"
DEFAULT_PARALLELISM = 4
_MIGRATED_MARKER = ".metadata-migrated"


class AirflowSetupError(RuntimeError):
    """Airflow's metadata database could not be prepared; the message says why."""


def airflow_home(home: Path | None = None, base: Mapping[str, str] | None = None) -> Path:
    """`<home>/airflow`; without `home`, AIRFLOW_HOME when set, else `<KLINEHOUSE_HOME>/airflow`."""
    if home is not None:
        return home / "airflow"
    configured = (os.environ if base is None else base).get("AIRFLOW_HOME")
    return Path(configured) if configured else paths.home() / "airflow"


def venv_bin() -> Path:
    """The folder of the running interpreter (`.venv/bin`): `airflow` and `dbt` live there."""
    return Path(sys.executable).parent


def jwt_secret(af_home: Path) -> str:
    """A 64-byte-plus secret for the API server's JWTs, generated once into the state folder."""
    path = af_home / "jwt_secret"
    if path.exists():
        return path.read_text().strip()
    af_home.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(64)  # 86 characters
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def warehouse_conn_uri(database_url: str) -> str:
    """The warehouse URL in the form Airflow parses (`postgres://`, as its connection type)."""
    scheme, rest = database_url.split("://", 1)
    return f"postgres://{rest}" if scheme in {"postgresql", "postgres"} else database_url


def airflow_env(
    home: Path | None = None,
    *,
    database_url: str | None = None,
    api_port: int | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The Airflow variables for this state folder; `base` (default os.environ) values win.

    `database_url` adds the warehouse connection; `api_port` sets the API server's
    port and the base URL its task runners call back on.
    """
    base = os.environ if base is None else base
    af_home = airflow_home(home, base)
    env: dict[str, str] = {
        "AIRFLOW_HOME": str(af_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(DEFAULT_PARALLELISM),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(DEFAULT_PARALLELISM),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{af_home / 'airflow.db'}",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__API__HOST": API_HOST,
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret(af_home),
        "AIRFLOW__COSMOS__CACHE_DIR": str(af_home / "cosmos-cache"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "KLINEHOUSE_HOME": str(home or paths.home()),
        # `airflow standalone` launches `airflow` (and cosmos `dbt`) by name.
        "PATH": f"{venv_bin()}{os.pathsep}{base.get('PATH', os.defpath)}",
    }
    if api_port is not None:
        env["AIRFLOW__API__PORT"] = str(api_port)
        host = base.get("AIRFLOW__API__HOST", API_HOST)
        shown = "localhost" if host in {"0.0.0.0", "::"} else host
        env["AIRFLOW__API__BASE_URL"] = f"http://{shown}:{api_port}"
    if database_url:
        env[f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}"] = warehouse_conn_uri(database_url)
    return {key: value for key, value in env.items() if key == "PATH" or key not in base}


def apply_env(home: Path | None = None, *, database_url: str | None = None) -> dict[str, str]:
    """Put the Airflow variables into this process (before any `import airflow`)."""
    if "airflow" in sys.modules and "AIRFLOW_HOME" not in os.environ:
        raise AirflowSetupError(
            "airflow was imported before its environment was set: it has already read "
            "~/airflow; call app.orchestration.env.apply_env() first"
        )
    env = airflow_env(home, database_url=database_url)
    os.environ.update(env)
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    return env


def migrate_metadata_db(env: Mapping[str, str] | None = None, *, force: bool = False) -> None:
    """`airflow db migrate` into the private AIRFLOW_HOME (skipped once done for this version)."""
    full_env = {**os.environ, **(env or {})}
    af_home = Path(full_env["AIRFLOW_HOME"])
    marker = af_home / _MIGRATED_MARKER
    version = _airflow_version()
    if not force and marker.exists() and marker.read_text().strip() == version:
        return
    af_home.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [str(venv_bin() / "airflow"), "db", "migrate"],
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise AirflowSetupError(
            f"`airflow db migrate` failed in {af_home} (exit {result.returncode}): "
            + " | ".join(tail)
        )
    marker.write_text(version)


def _airflow_version() -> str:
    from importlib.metadata import version

    return version("apache-airflow")
