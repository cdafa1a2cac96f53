"""The one typed settings object of klinehouse.

Every value comes from the environment (prefix `KLINEHOUSE_`). When the
database or S3 endpoint is not given, the values of a running embedded stack
(`klinehouse stack up`) are used, so that commands work right after `stack up`
without exporting anything. Credentials never come from the repository.

This module is the only reader of klinehouse's environment variables
(tests/klinehouse/test_one_definition.py greps for others). Two are read
without building a Settings: the state folder and the shared data folder, which
`klinehouse.paths` needs on every call and which the stack source itself needs.
Values checked by the code that uses them (series lists, cron strings, counts)
stay raw text here, so that a bad one fails there, with its own message, and
not every command that reads a setting.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from klinehouse import paths
from klinehouse.errors import KlinehouseError

# The stack's database URLs belong together (one server, one database): when the
# environment names the database, the stack's reader/loader URLs for its own are not used.
_STACK_DATABASE_KEYS = ("database_url", "reader_database_url", "loader_database_url")


class _StackSource(PydanticBaseSettingsSource):
    """Lowest-priority source: the connection values of the running local stack."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        state_file = paths.home() / "stack.json"
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            return {}
        values = dict(state.get("settings", {}))
        if os.environ.get("KLINEHOUSE_DATABASE_URL"):
            for key in _STACK_DATABASE_KEYS:
                values.pop(key, None)
        return values


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KLINEHOUSE_", extra="ignore")

    database_url: str = Field(
        default="",
        description="PostgreSQL URL of the warehouse owner (loads raw, runs dbt and migrations).",
    )
    reader_database_url: str = Field(
        default="",
        description="PostgreSQL URL as klinehouse_reader (the gRPC service); defaults to DATABASE_URL.",
    )
    loader_database_url: str = Field(
        default="",
        description="PostgreSQL URL as klinehouse_loader (writes raw only); defaults to DATABASE_URL.",
    )
    s3_endpoint_url: str = Field(
        default="", description="S3 endpoint (MinIO, moto); empty means AWS itself."
    )
    s3_access_key_id: str | None = Field(
        default=None, description="S3 access key; unset uses the AWS credential chain."
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None, description="S3 secret key; unset uses the AWS credential chain."
    )
    lake_uri: str = Field(default="s3://klinehouse-lake/", description="Root of the parquet lake.")
    aws_region: str = Field(default="us-east-1", description="Region for the S3 client.")
    binance_rest_url: str = Field(
        default="https://api.binance.com", description="Spot REST base URL."
    )
    binance_futures_rest_url: str = Field(
        default="https://fapi.binance.com", description="USD-M futures REST base URL."
    )
    binance_coinm_rest_url: str = Field(
        default="https://dapi.binance.com", description="COIN-M futures REST base URL."
    )
    binance_ws_url: str = Field(
        default="wss://stream.binance.com:9443", description="Spot websocket base URL."
    )
    binance_futures_ws_url: str = Field(
        default="wss://fstream.binance.com", description="USD-M futures websocket base URL."
    )
    binance_coinm_ws_url: str = Field(
        default="wss://dstream.binance.com", description="COIN-M futures websocket base URL."
    )
    binance_archive_url: str = Field(
        default="https://data.binance.vision", description="Bulk archive base URL."
    )
    grpc_address: str = Field(default="127.0.0.1:50051", description="gRPC listen address.")
    grpc_token: SecretStr | None = Field(
        default=None, description="Bearer token required by the gRPC service when set."
    )
    grpc_tls_cert: str | None = Field(default=None, description="PEM certificate for gRPC TLS.")
    grpc_tls_key: str | None = Field(default=None, description="PEM private key for gRPC TLS.")

    # dbt
    dbt_target_path: str = Field(
        default="",
        validation_alias="DBT_TARGET_PATH",
        description="dbt's artifacts folder (dbt's own variable); default <home>/dbt/target.",
    )

    # Orchestration (raw text, checked by app.orchestration.config).
    pipeline_series: str = Field(
        default="", description="market:SYMBOL:interval,… the DAGs extract; empty: the default."
    )
    extract_schedule: str = Field(default="", description="Cron of klines_extract_load.")
    training_schedule: str = Field(default="", description="Cron of model_training.")
    task_retries: str = Field(default="3", description="Retries of the DAGs' tasks.")
    dbt_invocation: str = Field(
        default="dbt_runner", description="How cosmos runs dbt: dbt_runner or subprocess."
    )
    training_iterations: str = Field(
        default="", description="CatBoost iterations of the DAG's training; empty: ModelConfig's."
    )
    training_threads: str = Field(
        default="", description="CatBoost threads of the DAG's training; empty: ModelConfig's."
    )

    # The development stack (devstack/).
    pg_bindir: str = Field(default="", description="Folder of initdb/pg_ctl for the dev stack.")
    stack_pg_port: str = Field(default="", description="Preferred PostgreSQL port of the stack.")
    stack_s3_port: str = Field(default="", description="Preferred S3 (moto) port of the stack.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _StackSource(settings_cls))

    @property
    def lake_bucket(self) -> str:
        return urlsplit(self.lake_uri).netloc

    @property
    def lake_prefix(self) -> str:
        return urlsplit(self.lake_uri).path.lstrip("/")

    def require_database_url(self) -> str:
        if not self.database_url:
            raise SettingsError(
                "no database configured: set KLINEHOUSE_DATABASE_URL or run `klinehouse stack up`"
            )
        return self.database_url

    def reader_url(self) -> str:
        return self.reader_database_url or self.require_database_url()

    def loader_url(self) -> str:
        """The URL loads and the ingester write raw as (klinehouse_loader or a member)."""
        return self.loader_database_url or self.require_database_url()


class _EnvironmentOnly(Settings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


def environment_settings() -> Settings:
    """The settings the environment gives, without the running stack's values: what
    the stack itself asks to tell an external database or S3 from its own."""
    return _EnvironmentOnly()


HOME_VARIABLE: Final = "KLINEHOUSE_HOME"
SHARED_DATA_VARIABLE: Final = "KLINEHOUSE_SHARED_DATA"


def configured_home() -> str:
    """`$KLINEHOUSE_HOME` ('' when unset): a plain read, cheap enough for every call."""
    return os.environ.get(HOME_VARIABLE, "")


def configured_shared_data() -> str:
    """`$KLINEHOUSE_SHARED_DATA` ('' when unset)."""
    return os.environ.get(SHARED_DATA_VARIABLE, "")


class SettingsError(KlinehouseError):
    """A setting is missing or unusable; the message names it."""


@lru_cache(maxsize=1)
def _cached() -> Settings:
    return Settings()


def get_settings(*, fresh: bool = False) -> Settings:
    """The current settings; `fresh=True` re-reads the environment and stack state."""
    if fresh:
        _cached.cache_clear()
    return _cached()
