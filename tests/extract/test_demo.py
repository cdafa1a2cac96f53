"""The demo step falls back to the stand-in when Binance does not answer, and loads both series."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from app.demo.extract import step
from klinehouse.settings import Settings, get_settings


def test_demo_step_uses_the_standin_and_loads_the_real_series(
    warehouse: Settings,
    shared_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KLINEHOUSE_BINANCE_REST_URL", "http://127.0.0.1:9")  # nothing listens there
    get_settings(fresh=True)
    step()
    out = capsys.readouterr().out
    assert "using the local stand-in" in out and "loaded (new)" in out
    files = sorted((shared_data / "binance" / "spot-archive").glob("*.csv"))
    expected = {
        symbol: sum(len(p.read_text().splitlines()) for p in files if p.name.startswith(symbol))
        for symbol in ("BTCUSDT", "ETHUSDT")
    }
    with psycopg.connect(warehouse.database_url) as conn:
        counts = dict(
            conn.execute("SELECT symbol, count(*) FROM raw.binance_klines GROUP BY 1").fetchall()
        )
    assert counts == expected
    # A second run resumes after the newest candle and loads nothing new.
    step()
    assert "loaded (new)                 0" in capsys.readouterr().out
    assert get_settings(fresh=True).binance_rest_url == "http://127.0.0.1:9"
