"""A warehouse with the real 5-symbol 1h freqtrade data, loaded through the project's
own import path (extract -> lake -> raw) and built by dbt into the marts, shared by
the real-data tests of this package (loading and dbt cost ~1 min: once per module)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from klinehouse.settings import Settings, get_settings

TEMPLATE_DB = "klinehouse_template"  # made by tests/conftest.py's session fixture


@dataclass(frozen=True)
class RealWarehouse:
    url: str  # owner
    reader_url: str  # klinehouse_reader, as the gRPC service connects
    reports: Path


def _with_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module")
def real_warehouse(
    stack: Settings, shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealWarehouse]:
    from devstack.stack.s3 import ensure_bucket
    from extract.importers import import_freqtrade_dir
    from transform.runner import run_dbt

    source = shared_data / "freqtrade-json"
    if not source.is_dir():
        pytest.skip(f"{source} not found")
    admin = _with_db(stack.require_database_url(), "postgres")
    name = f"t_train_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(TEMPLATE_DB)
            )
        )
    url = _with_db(stack.require_database_url(), name)
    bucket = f"lake-{uuid.uuid4().hex[:10]}"
    ensure_bucket(stack.s3_endpoint_url, bucket)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KLINEHOUSE_DATABASE_URL", url)
        mp.setenv("KLINEHOUSE_READER_DATABASE_URL", _with_db(stack.reader_url(), name))
        mp.setenv("KLINEHOUSE_LAKE_URI", f"s3://{bucket}/")
        get_settings(fresh=True)
        try:
            import_freqtrade_dir(source, market="spot", url=url)
            run_dbt(["run", "--select", "+candle_features", "+candle_labels"], database_url=url)
            yield RealWarehouse(
                url, _with_db(stack.reader_url(), name), tmp_path_factory.mktemp("reports")
            )
        finally:
            get_settings(fresh=True)
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
    get_settings(fresh=True)
