"""Extract's outputs that quote exception text (the stream's /healthz `last_error`, a run
summary's failures) show credentials masked."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from extract.cli import _echo_summary
from extract.stream.health import start_health_server
from extract.summary import RunSummary


def test_last_error_in_healthz_is_served_masked() -> None:
    leaky = (
        "lake: EndpointConnectionError: Could not connect to the endpoint URL: "
        '"http://AKIAEXAMPLE:SECRET@127.0.0.1:1/klinehouse-lake/x.parquet"'
    )

    async def fetch() -> tuple[int, str]:
        runner, port = await start_health_server(
            lambda: {"healthy": False, "last_error": leaky}, host="127.0.0.1", port=0
        )
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/healthz") as response,
            ):
                return response.status, await response.text()
        finally:
            await runner.cleanup()

    status, body = asyncio.run(fetch())
    assert status == 503
    assert "SECRET" not in body
    assert "http://AKIAEXAMPLE:***@127.0.0.1:1" in json.loads(body)["last_error"]


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
