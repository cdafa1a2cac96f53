"""The dashboard in a real browser (Debian's chromium driven by playwright): pick a series, read
the chart's candles from the page and compare them with the warehouse, switch pages."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devstack.browser import CHROMIUM, FLAGS
from tests.dashboard.conftest import MODEL_VERSION, Server

# `DASHBOARD_SCREENSHOTS=docs/img pytest tests/dashboard` refreshes the README's screenshots.
SCREENSHOTS = os.environ.get("DASHBOARD_SCREENSHOTS")

CANDLES_JS = """() => {
    const gd = document.querySelector('#chart .js-plotly-plot');
    if (!gd || !gd.data) return null;
    const t = gd.data.find(d => d.type === 'candlestick');
    if (!t) return null;
    const shapes = (gd.layout.shapes || []).map(s => [s.x0, s.x1]);
    const flags = Object.fromEntries(
        gd.data.filter(d => d.mode === 'markers').map(d => [d.name, d.x]));
    return {x: t.x, open: t.open, high: t.high, low: t.low, close: t.close, shapes, flags};
}"""


@pytest.fixture(scope="module")
def page(dashboard_server: Server) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `make chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(20_000)
        yield page
        browser.close()


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _warehouse(url: str, symbol: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT open_time, open::float8, high::float8, low::float8, close::float8"
            " FROM marts.candles WHERE market = 'spot' AND symbol = %s AND interval = '1h'"
            " ORDER BY open_time",
            (symbol,),
        ).fetchall()


def _chart(page: Any, first_day: str) -> dict[str, Any]:
    page.wait_for_function(
        f"() => {{ const c = ({CANDLES_JS})(); return c && c.x.length && c.x[0].startsWith('{first_day}'); }}"
    )
    result: dict[str, Any] = page.evaluate(CANDLES_JS)
    return result


def _same(chart: dict[str, Any], rows: list[tuple[Any, ...]]) -> None:
    got = list(
        zip(
            map(_iso, chart["x"]),
            chart["open"],
            chart["high"],
            chart["low"],
            chart["close"],
            strict=True,
        )
    )
    assert got == rows


def _commit_next_bar(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO raw.binance_klines (market, symbol, interval, open_time, close_time,"
            " open, high, low, close, volume, source) VALUES ('spot', 'BTCUSDT', '1h',"
            " '2023-04-01 00:00+00', '2023-04-01 00:59:59.999+00', 28465.4, 28500, 28400,"
            " 28478.5, 120.5, 'stream')"
        )


def _shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)


def test_pick_a_series_see_its_candles_and_switch_pages(
    page: Any, dashboard_server: Server
) -> None:
    page.goto(dashboard_server.url + "/")
    # the first series (BTCUSDT 1h, March 2023) is drawn: every candle as in marts.candles
    chart = _chart(page, "2023-03-01")
    _same(chart, _warehouse(dashboard_server.database_url, "BTCUSDT"))
    # the outage's missing 13:00 bar is shaded, the zero-volume 12:00 bar is flagged
    assert [(_iso(a).isoformat(), _iso(b).isoformat()) for a, b in chart["shapes"]] == [
        ("2023-03-24T13:00:00+00:00", "2023-03-24T14:00:00+00:00")
    ]
    assert [_iso(x).isoformat() for x in chart["flags"]["zero volume"]] == [
        "2023-03-24T12:00:00+00:00"
    ]
    assert page.inner_text("#candle-count") == "743 candles"
    page.wait_for_selector("#live-bar")
    assert "2023-03-31 23:00" in page.inner_text("#live-bar")
    _shot(page, "dashboard-chart.png")

    # a bar committed to raw (as `klinehouse stream` does) shows up without a reload
    _commit_next_bar(dashboard_server.database_url)
    page.wait_for_function(
        "() => document.querySelector('#live-bar').innerText.includes('2023-04-01 00:00')"
    )
    assert "C 28478.5" in page.inner_text("#live-bar")

    # pick the other series in the picker
    page.click("#series")
    page.get_by_text("ETHUSDT 1h (spot)").click()
    chart = _chart(page, "2024-11-01")
    _same(chart, _warehouse(dashboard_server.database_url, "ETHUSDT"))
    assert chart["shapes"] == []

    # a bad range is refused with a message naming it, the chart stays
    page.fill("#start", "yesterday")
    page.press("#start", "Enter")
    page.wait_for_selector("#input-error")
    assert "start 'yesterday' is not an ISO date" in page.inner_text("#input-error")
    page.fill("#start", "")
    page.press("#start", "Enter")

    # the registry page: the model, its status and reason, its equity curve against buy and hold
    page.click("#nav-models")
    page.wait_for_selector(f"#registry >> text={MODEL_VERSION}")
    row = page.inner_text("#registry tbody tr")
    assert "rejected" in row and "net return does not beat buy_and_hold" in row
    equity = page.wait_for_function(
        """() => { const gd = document.querySelector('#equity .js-plotly-plot');
                   return gd && gd.data && gd.data.length === 2 && gd.data.map(t => t.y); }"""
    ).json_value()
    assert equity[0] == pytest.approx([1.0, 1.02, 1.02 * 1.01])
    assert equity[1] == pytest.approx([1.0, 0.99, 0.99 * 1.03])
    assert page.is_hidden("#page-chart")
    _shot(page, "dashboard-models.png")

    page.click("#nav-chart")
    page.wait_for_selector("#page-chart", state="visible")
