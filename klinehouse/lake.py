"""Access to the parquet lake on S3 (or any S3-compatible endpoint).

One place builds the clients so that boto3, polars and pyarrow all talk to the
same endpoint with the same credentials. pyarrow's S3FileSystem ignores
AWS_ENDPOINT_URL, so the endpoint is always passed explicitly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from klinehouse.settings import Settings, get_settings

if TYPE_CHECKING:
    import pyarrow.fs


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


def storage_options(settings: Settings | None = None) -> dict[str, str]:
    """`storage_options` for polars' read/write/scan of `s3://` URLs."""
    settings = settings or get_settings()
    options = {"aws_region": settings.aws_region}
    if settings.s3_endpoint_url:
        options["aws_endpoint_url"] = settings.s3_endpoint_url
        if settings.s3_endpoint_url.startswith("http://"):
            options["aws_allow_http"] = "true"
    options.update(_credentials(settings))
    return options


def pyarrow_filesystem(settings: Settings | None = None) -> pyarrow.fs.S3FileSystem:
    from urllib.parse import urlsplit

    import pyarrow.fs

    settings = settings or get_settings()
    kwargs: dict[str, Any] = {"region": settings.aws_region}
    if settings.s3_endpoint_url:
        endpoint = urlsplit(settings.s3_endpoint_url)
        kwargs["endpoint_override"] = endpoint.netloc
        kwargs["scheme"] = endpoint.scheme or "https"
    creds = _credentials(settings)
    if creds:
        kwargs["access_key"] = creds["aws_access_key_id"]
        kwargs["secret_key"] = creds["aws_secret_access_key"]
    return pyarrow.fs.S3FileSystem(**kwargs)


def key(*parts: str, settings: Settings | None = None) -> str:
    """An object key under the lake prefix: key('raw', 'x.parquet') -> '<prefix>raw/x.parquet'."""
    settings = settings or get_settings()
    prefix = settings.lake_prefix
    joined = "/".join(p.strip("/") for p in parts if p)
    return f"{prefix.rstrip('/')}/{joined}" if prefix else joined


def url(object_key: str, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return f"s3://{settings.lake_bucket}/{object_key}"
