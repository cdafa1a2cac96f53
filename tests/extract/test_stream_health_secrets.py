"""The ingester's /healthz `last_error` quotes exception text: its credentials are masked."""

from __future__ import annotations

from extract.stream.ingester import StreamIngester, StreamOptions
from klinehouse.settings import Settings


def test_last_error_in_health_is_masked() -> None:
    settings = Settings(database_url="postgresql://loader:SECRET@127.0.0.1:1/k")
    ingester = StreamIngester(
        StreamOptions(market="spot", symbols=("BTCUSDT",), intervals=("1m",)), settings=settings
    )
    assert ingester.health()["last_error"] is None
    # what a lake write against an endpoint with credentials records (botocore's message)
    ingester._last_error = (
        "lake: EndpointConnectionError: Could not connect to the endpoint URL: "
        '"http://AKIAEXAMPLE:SECRET@127.0.0.1:1/klinehouse-lake/x.parquet"'
    )
    shown = ingester.health()["last_error"]
    assert "SECRET" not in shown and "http://AKIAEXAMPLE:***@127.0.0.1:1" in shown
