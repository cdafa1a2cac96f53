"""The pipeline on synthetic marts with a planted signal: train, report, register,
promote, serve through load_champion (real PostgreSQL and moto S3)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from klinehouse.errors import KlinehouseError
from klinehouse.features import FEATURES
from klinehouse.settings import Settings, get_settings
from training import registry, synthetic
from training.dataset import DatasetSpec, load_dataset
from training.evaluate import EvalConfig
from training.models import ModelConfig
from training.pipeline import train

FAST = ModelConfig(iterations=60, depth=3, learning_rate=0.1)
# next-bar candidates and a 1-bar purge: the frame is small (all candidates: test_candidates.py)
EVAL = EvalConfig(
    n_folds=2, embargo_bars=5, purge_bars=1, candidates=("catboost_h1", "logistic_h1")
)


@pytest.fixture
def marts_url(database_url: str, lake_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", database_url)
    monkeypatch.setenv("KLINEHOUSE_READER_DATABASE_URL", database_url)
    get_settings(fresh=True)
    synthetic.write_marts(synthetic.frame(bars=900, signal=1.0), url=database_url)
    return database_url


def test_dataset_reads_the_marts_columnar(marts_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = synthetic.frame(bars=900, signal=1.0)
    whole = load_dataset(DatasetSpec(), url=marts_url, workers=1)
    assert load_dataset(DatasetSpec(), url=marts_url, workers=3).equals(whole)
    monkeypatch.setattr("training.dataset._CHUNK_BYTES", 4096)  # many chunks, cut mid-block
    assert load_dataset(DatasetSpec(), url=marts_url).equals(whole)
    assert whole.height == expected.height
    empty = load_dataset(DatasetSpec(symbols=("NOPEUSDT",)), url=marts_url)
    assert empty.is_empty() and empty.columns == whole.columns
    with pytest.raises(KlinehouseError, match="no rows"):
        train(DatasetSpec(symbols=("NOPEUSDT",)), register=False)
    with pytest.raises(KlinehouseError, match="unknown interval"):
        load_dataset(DatasetSpec(interval="7m"), url=marts_url)
    got = load_dataset(DatasetSpec(symbols=("ETHUSDT",)), url=marts_url)
    want = expected.filter(pl.col("symbol") == "ETHUSDT")
    assert got.height == want.height == 900
    assert got["open_time"].dtype == pl.Datetime("us", "UTC")
    assert got["open_time"].to_list() == want["open_time"].to_list()
    assert got["target_up"].to_list() == want["target_up"].to_list()
    assert got["rsi_14"].to_list() == pytest.approx(want["rsi_14"].to_list(), rel=1e-12)


def test_dataset_without_marts_is_a_clear_error(database_url: str) -> None:
    with pytest.raises(KlinehouseError, match="run `klinehouse transform`"):
        load_dataset(DatasetSpec(), url=database_url)


def test_train_registers_a_servable_champion(marts_url: str, tmp_path) -> None:
    result = train(DatasetSpec(), model_config=FAST, eval_config=EVAL, report_root=tmp_path)
    # the planted signal is found out of sample and beats the baselines
    assert result.metrics["classifier"]["auc"] > 0.7
    assert result.status == "champion", result.reason
    assert registry.champion_version(marts_url) == result.version
    for name in (
        "metrics.json",
        "summary.md",
        "equity.png",
        "calibration.png",
        "feature_importance.png",
    ):
        assert (result.report.parent / name).stat().st_size > 0
    doc = json.loads((result.report.parent / "metrics.json").read_text())
    assert doc["metrics"]["backtest"]["model"]["net_return"] == pytest.approx(
        result.metrics["backtest"]["model"]["net_return"]
    )

    champion = registry.load_champion(marts_url)
    assert champion is not None and champion.version == result.version
    rows = synthetic.frame(bars=30, signal=1.0, seed=7)
    out = champion.predict(rows.select(*FEATURES, "open_time"))
    assert out.columns == ["symbol", "open_time", "p_up", "expected_log_return"]
    assert out.height == 30 * 3
    assert out["p_up"].is_between(0, 1).all()
    with pytest.raises(KlinehouseError, match="lacks column"):
        champion.predict(rows.drop("rsi_14"))

    # the same data and seed again: the same metrics, and not promoted (it does not beat itself)
    again = train(DatasetSpec(), model_config=FAST, eval_config=EVAL, report_root=tmp_path)
    assert registry.jsonable(again.metrics) == registry.jsonable(result.metrics)
    assert again.status == "rejected"
    assert "champion" in again.reason
    assert registry.champion_version(marts_url) == result.version

    # the registry through the CLI
    from click.testing import CliRunner

    from app.cli import cli

    runner = CliRunner()
    listed = runner.invoke(cli, ["models", "list"])
    assert listed.exit_code == 0, listed.output
    assert result.version in listed.output and again.version in listed.output
    shown = runner.invoke(cli, ["models", "show"])
    assert shown.exit_code == 0 and json.loads(shown.output)["version"] == result.version
    refused = runner.invoke(cli, ["models", "promote", again.version])
    assert refused.exit_code == 1 and "rejected" in refused.output
    assert registry.champion_version(marts_url) == result.version


def test_a_chosen_linear_candidate_is_recorded_and_not_served(marts_url: str, tmp_path) -> None:
    only_linear = EvalConfig(n_folds=2, embargo_bars=5, purge_bars=1, candidates=("logistic_h1",))
    result = train(DatasetSpec(), model_config=FAST, eval_config=only_linear, report_root=tmp_path)
    assert result.metrics["chosen"] == "logistic_h1" and result.metrics["servable"] is False
    assert result.status == "rejected"
    assert "logistic_h1 cannot be served" in result.reason
    doc = json.loads((result.report.parent / "metrics.json").read_text())
    assert doc["stored_classifier"] == "catboost_h1 (fallback)"
    assert len(doc["linear_model"]["coefficients"]) == len(doc["linear_model"]["features"]) + 3
    assert "## Candidates" in result.report.read_text()
