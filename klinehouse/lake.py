"""Access to the parquet lake on S3 (or any S3-compatible endpoint).

One place builds the S3 client from the settings, so every reader and writer
talks to the same endpoint with the same credentials.
"""

from __future__ import annotations

from typing import Any

from klinehouse.settings import Settings, get_settings


def _credentials(settings: Settings) -> dict[str, str]:
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        return {
            "aws_access_key_id": settings.s3_access_key_id,
            "aws_secret_access_key": settings.s3_secret_access_key.get_secret_value(),
        }
    return {}


def s3_client(settings: Settings | None = None) -> Any:
    import boto3

    settings = settings or get_settings()
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url or None,
        region_name=settings.aws_region,
        **_credentials(settings),
    )


def key(*parts: str, settings: Settings | None = None) -> str:
    """An object key under the lake prefix: key('raw', 'x.parquet') -> '<prefix>raw/x.parquet'."""
    settings = settings or get_settings()
    prefix = settings.lake_prefix
    joined = "/".join(p.strip("/") for p in parts if p)
    return f"{prefix.rstrip('/')}/{joined}" if prefix else joined


def url(object_key: str, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return f"s3://{settings.lake_bucket}/{object_key}"
