"""The one typed settings object of klinehouse.

Every value comes from the environment (prefix `KLINEHOUSE_`). When the
database or S3 endpoint is not given, the values of a running embedded stack
(`klinehouse stack up`) are used, so that commands work right after `stack up`
without exporting anything. Credentials never come from the repository.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from klinehouse import paths
from klinehouse.errors import KlinehouseError


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
        return dict(state.get("settings", {}))


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
