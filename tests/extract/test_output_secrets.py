"""Extract's outputs that quote exception text (the ingester's /healthz `last_error`, a run
summary's failures) show credentials masked."""

from __future__ import annotations

import pytest

from extract.cli import _echo_summary
from extract.stream.ingester import StreamIngester, StreamOptions
from extract.summary import RunSummary
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


def test_failures_in_a_run_summary_are_printed_masked(capsys: pytest.CaptureFixture[str]) -> None:
    summary = RunSummary(run_id="r")
    summary.failures.append(
        'spot BTCUSDT 1h: Could not connect to the endpoint URL: "http://AK:SECRET@127.0.0.1:1/b"'
    )
    with pytest.raises(SystemExit) as exit_info:
        _echo_summary(summary, "extract")
    out = capsys.readouterr().out
    assert exit_info.value.code == 1
    assert "SECRET" not in out and "http://AK:***@127.0.0.1:1/b" in out
