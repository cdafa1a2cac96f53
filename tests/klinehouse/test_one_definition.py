"""Facts read in one place only: the environment through klinehouse.settings, ISO
times through klinehouse.times. Each scan is also run on a snippet that breaks the
rule, so it cannot pass by finding nothing."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from klinehouse import paths

PACKAGES = ("klinehouse", "extract", "transform", "expectations", "training", "inference",
            "app", "devstack", "dags")  # fmt: skip
# Project variables that are not KLINEHOUSE_* but are settings all the same.
PROJECT_VARIABLES = frozenset({"DBT_TARGET_PATH"})
# Files that may touch os.environ with names they do not spell, and why.
ENVIRONMENT_READERS = {
    "klinehouse/settings.py": "the one reader",
    "klinehouse/envvars.py": "saves and restores variables it sets for a block (dbt, GX)",
}
# Not read through settings on purpose (only these names, anywhere): the OS user
# as dbt's default role, and Airflow's, the shell's and Python's own variables.
FOREIGN_PREFIXES = ("AIRFLOW_", "AIRFLOW__", "PATH", "PYTHONPATH", "USER")


def _sources() -> Iterator[tuple[str, str]]:
    for package in PACKAGES:
        for path in sorted((paths.REPO_ROOT / package).rglob("*.py")):
            relative = path.relative_to(paths.REPO_ROOT).as_posix()
            if not relative.startswith("klinehouse/v1/"):  # generated protobuf stubs
                yield relative, path.read_text()


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def environment_reads(source: str) -> list[tuple[int, str]]:
    """(line, variable) of each read of os.environ / getenv; '?' when the name is computed.

    Writes (`os.environ[x] = …`, `.update`, `.setdefault`, `.pop`) and copies for a
    child process (`{**os.environ, …}`) are not reads.
    """
    found: list[tuple[int, str]] = []

    def name_of(arg: ast.AST | None) -> str:
        return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else "?"

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            getenv = (isinstance(func, ast.Attribute) and func.attr == "getenv") or (
                isinstance(func, ast.Name) and func.id == "getenv"
            )
            environ_get = (
                isinstance(func, ast.Attribute) and func.attr == "get" and _is_environ(func.value)
            )
            if getenv or environ_get:
                found.append((node.lineno, name_of(node.args[0] if node.args else None)))
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            if _is_environ(node.value):
                found.append((node.lineno, name_of(node.slice)))
        elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
            found.append((node.lineno, name_of(node.left)))
    return found


def _ours(variable: str) -> bool:
    if variable == "?":
        return True
    return variable.startswith("KLINEHOUSE_") or variable in PROJECT_VARIABLES


def test_only_settings_reads_klinehouse_variables() -> None:
    offenders = [
        f"{path}:{line} reads {variable}"
        for path, text in _sources()
        if path not in ENVIRONMENT_READERS
        for line, variable in environment_reads(text)
        if _ours(variable) or not variable.startswith(FOREIGN_PREFIXES)
    ]
    assert offenders == [], "read these through klinehouse.settings"


def test_the_environment_scan_finds_reads() -> None:
    snippet = (
        "import os\nfrom os import environ, getenv\n"
        "a = os.environ.get('KLINEHOUSE_X')\nb = os.environ['DBT_TARGET_PATH']\n"
        "c = getenv('KLINEHOUSE_Y', '1')\nd = 'KLINEHOUSE_Z' in environ\ne = os.environ[name]\n"
        "os.environ['KLINEHOUSE_W'] = '1'\nos.environ.setdefault('KLINEHOUSE_V', '2')\n"
        "f = {**os.environ, 'KLINEHOUSE_U': '3'}\ng = os.environ.get('AIRFLOW_HOME')\n"
    )
    reads = sorted(environment_reads(snippet))
    assert reads == [
        (3, "KLINEHOUSE_X"), (4, "DBT_TARGET_PATH"), (5, "KLINEHOUSE_Y"), (6, "KLINEHOUSE_Z"),
        (7, "?"), (11, "AIRFLOW_HOME"),
    ]  # fmt: skip
    assert [v for _, v in reads if not _ours(v)] == ["AIRFLOW_HOME"]


def iso_parsers(source: str) -> list[int]:
    """Lines calling datetime.fromisoformat (a date's fromisoformat is another format)."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute)
        and node.attr == "fromisoformat"
        and isinstance(node.value, ast.Name)
        and node.value.id == "datetime"
    ]


def test_one_iso_time_parser() -> None:
    offenders = [
        f"{path}:{line}"
        for path, text in _sources()
        if path != "klinehouse/times.py"
        for line in iso_parsers(text)
    ]
    assert offenders == [], "parse ISO times with klinehouse.times"
    assert iso_parsers("from datetime import datetime\nx = datetime.fromisoformat(s)\n") == [2]
