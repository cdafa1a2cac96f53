"""The champion's predictions over the drawn feature rows, and a trained model's registry curves
(a real champion trained on synthetic marts, its artefacts in the moto lake)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from dashboard import models, queries
from dashboard.queries import SeriesKey
from klinehouse.settings import Settings, get_settings
from training import registry, synthetic
from training.dataset import DatasetSpec
from training.evaluate import EvalConfig
from training.models import ModelConfig
from training.pipeline import train


@pytest.fixture
def trained(
    database_url: str, lake_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> str:
    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", database_url)
    monkeypatch.setenv("KLINEHOUSE_READER_DATABASE_URL", database_url)
    get_settings(fresh=True)
    synthetic.write_marts(synthetic.frame(bars=600, signal=1.0), url=database_url)
    result = train(
        DatasetSpec(),
        model_config=ModelConfig(iterations=40, depth=3, learning_rate=0.1),
        eval_config=EvalConfig(n_folds=2, embargo_bars=5, leakage_check=False),
        report_root=tmp_path,
    )
    if result.status != "champion":
        # The dashboard shows whichever model is champion; whether the promotion rule
        # passes on these synthetic marts is training's test, not this one's.
        registry.promote(result.version, force=True, url=database_url)
    return database_url


def test_champion_predictions_and_registry_curves(trained: str) -> None:
    settings = get_settings()
    cache = models.ChampionCache(trained, settings)
    held = cache.get()
    assert held is not None and cache.get() is held  # loaded once per version
    assert held.serves("spot", "1h") and not held.serves("spot", "1m")
    champion = held.model
    key = SeriesKey("spot", "ETHUSDT", "1h")
    start = datetime(2022, 1, 2, tzinfo=UTC)
    with psycopg.connect(trained) as conn:
        rows = queries.features(conn, key, queries.window(key, start, start + timedelta(days=5)))
        [row] = queries.models(conn)
    assert len(rows) == 120
    predictions = models.predict(champion, "ETHUSDT", rows)
    assert [p.open_time for p in predictions] == [r.open_time for r in rows]
    # the same numbers as the champion on the training frame's rows
    frame = synthetic.frame(bars=600, signal=1.0)
    expected = champion.predict(
        frame.filter(
            (frame["symbol"] == "ETHUSDT")
            & (frame["open_time"] >= start)
            & (frame["open_time"] < start + timedelta(days=5))
        )
    )
    assert [p.p_up for p in predictions] == pytest.approx(expected["p_up"].to_list())
    assert {p.advice for p in predictions} <= {"buy", "sell", "hold"}
    assert [p.advice for p in predictions] == [champion.advice(p.p_up) for p in predictions]

    curve = models.equity_curve(row.metrics)
    folds = row.metrics["folds"]
    assert len(curve) == len(folds) + 1 and curve[0].model == 1.0
    model, hold = 1.0, 1.0
    for fold in folds:
        model *= 1 + fold["backtest"]["model"]["net_return"]
        hold *= 1 + fold["backtest"]["buy_and_hold"]["net_return"]
    assert (curve[-1].model, curve[-1].buy_and_hold) == pytest.approx((model, hold))
    bins = models.calibration(row.artifact_uri, settings)
    assert bins and sum(b.n for b in bins) == row.metrics["test_rows"]
    assert models.calibration("s3://no-such-bucket/models/x/", settings) is None
    assert registry.champion_version(trained) == row.version
