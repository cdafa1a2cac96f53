"""The pipeline on marts dbt builds from synthetic raw klines with a planted signal:
train, report, register, promote, serve through load_champion (real PostgreSQL, dbt
and moto S3)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import polars as pl
import psycopg
import pytest

from klinehouse.errors import KlinehouseError
from klinehouse.features import FEATURES
from klinehouse.settings import Settings, get_settings
from training import registry, synthetic
from training.candidates import CANDIDATES
from training.dataset import DatasetSpec, load_dataset
from training.evaluate import EvalConfig
from training.models import ModelConfig
from training.pipeline import train

from ..marts import build_template, create_database, drop_database, with_db

FAST = ModelConfig(iterations=60, depth=3, learning_rate=0.1)
# next-bar candidates and a 1-bar purge: the frame is small (all candidates: test_candidates.py)
EVAL = EvalConfig(
    n_folds=2, embargo_bars=5, purge_bars=1, candidates=("catboost_h1", "logistic_h1")
)


KLINES = synthetic.klines(bars=900, signal=1.0)


@pytest.fixture(scope="session")
def marts_template(stack: Settings) -> Iterator[str]:
    """Raw klines with a planted signal, loaded and built into the training marts by dbt once."""
    name = build_template(stack, [KLINES], ("+candle_features", "+candle_labels"), prefix="train_")
    yield name
    drop_database(stack, name)


@pytest.fixture
def marts_url(
    marts_template: str,
    stack: Settings,
    lake_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    name = create_database(stack, marts_template, prefix="train_t_")
    url = with_db(stack.require_database_url(), name)
    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", url)
    monkeypatch.setenv("KLINEHOUSE_READER_DATABASE_URL", url)
    get_settings(fresh=True)
    yield url
    drop_database(stack, name)


def test_dataset_reads_the_marts_columnar(marts_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = load_dataset(DatasetSpec(), url=marts_url, workers=1)
    assert load_dataset(DatasetSpec(), url=marts_url, workers=3).equals(whole)
    monkeypatch.setattr("training.dataset._CHUNK_BYTES", 4096)  # many chunks, cut mid-block
    assert load_dataset(DatasetSpec(), url=marts_url).equals(whole)
    assert whole.height == KLINES.height
    empty = load_dataset(DatasetSpec(symbols=("NOPEUSDT",)), url=marts_url)
    assert empty.is_empty() and empty.columns == whole.columns
    with pytest.raises(KlinehouseError, match="no rows"):
        train(DatasetSpec(symbols=("NOPEUSDT",)), register=False)
    with pytest.raises(KlinehouseError, match="unknown interval"):
        load_dataset(DatasetSpec(interval="7m"), url=marts_url)
    got = load_dataset(DatasetSpec(symbols=("ETHUSDT",)), url=marts_url)
    seeded = KLINES.filter(pl.col("symbol") == "ETHUSDT").sort("open_time")
    assert got.height == seeded.height == 900
    assert got["open_time"].dtype == pl.Datetime("us", "UTC")
    assert got["open_time"].to_list() == seeded["open_time"].to_list()
    # the labels are the next bar's log return of the loaded closes (8 decimals)
    close = seeded["close"].round(8).to_numpy()
    next_return = np.log(close[1:] / close[:-1])
    assert got["target_log_return_1"].to_list()[:-1] == pytest.approx(next_return.tolist())
    assert got["target_log_return_1"][-1] is None  # the last bar has no next bar
    assert got["target_up"].to_list()[:-1] == (next_return > 0).tolist()
    # the COPY path reads the same features as a plain query of the mart
    with psycopg.connect(marts_url) as conn:
        rsi = conn.execute(
            "SELECT rsi_14 FROM marts.candle_features WHERE symbol = 'ETHUSDT' ORDER BY open_time"
        ).fetchall()
    assert got["rsi_14"].to_list() == [r[0] for r in rsi]
    assert got["rsi_14"].null_count() == 14  # 15 contiguous closes needed: NULL, never 0
    assert got["taker_buy_ratio"].to_list() == pytest.approx(
        (seeded["taker_buy_base_volume"] / seeded["volume"]).to_list(), rel=1e-6
    )


def test_dataset_without_marts_is_a_clear_error(database_url: str) -> None:
    with pytest.raises(KlinehouseError, match="run `klinehouse transform`"):
        load_dataset(DatasetSpec(), url=database_url)


def test_train_registers_a_servable_champion(marts_url: str, tmp_path) -> None:
    result = train(DatasetSpec(), model_config=FAST, eval_config=EVAL, report_root=tmp_path)
    # the planted signal is found out of sample and beats the baselines
    assert result.metrics.classifier.auc is not None and result.metrics.classifier.auc > 0.7
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
        result.metrics.backtest.model.net_return
    )

    champion = registry.load_champion(marts_url)
    assert champion is not None and champion.version == result.version
    # what it predicts: the chosen candidate's horizon and target, in the registry row too
    chosen = CANDIDATES[result.metrics.chosen or ""]
    assert result.metrics.servable
    assert (champion.candidate, champion.horizon_bars, champion.target) == (
        chosen.name,
        chosen.horizon,
        chosen.target(),
    )
    assert registry.get_model(result.version, url=marts_url).target == chosen.target()
    rows = synthetic.frame(bars=30, signal=1.0, seed=7)
    out = champion.predict(rows.select(*FEATURES, "open_time"))
    assert out.columns == ["symbol", "open_time", "p_up", "expected_log_return"]
    assert out.height == 30 * 3
    assert out["p_up"].is_between(0, 1).all()
    with pytest.raises(KlinehouseError, match="lacks column"):
        champion.predict(rows.drop("rsi_14"))

    # the same data and seed again: the same metrics, and not promoted (it does not beat itself)
    again = train(DatasetSpec(), model_config=FAST, eval_config=EVAL, report_root=tmp_path)
    assert again.metrics.to_json() == result.metrics.to_json()
    assert again.status == "rejected"
    assert "champion" in again.reason
    assert registry.champion_version(marts_url) == result.version

    # the orchestration's evaluate task reads the same typed row
    from app.orchestration.tasks import evaluate_candidate

    evaluated = evaluate_candidate({"version": result.version})
    assert evaluated["status"] == "champion"
    assert evaluated["log_loss"] == pytest.approx(result.metrics.classifier.log_loss)
    assert evaluated["net_return"] == pytest.approx(result.metrics.backtest.model.net_return)
    assert evaluated["leakage_check_passed"] is True
    assert evaluated["chosen"] == result.metrics.chosen is not None
    guards = result.metrics.guards
    assert guards is not None and evaluated["guards"] is not None
    assert evaluated["guards"]["deflated_sharpe"] == guards.deflated_sharpe.probability
    assert evaluated["guards"]["trials"] == guards.deflated_sharpe.trials
    assert evaluated["guards"]["bootstrap_lower"] == guards.bootstrap.lower

    # the registry through the CLI
    from click.testing import CliRunner

    from app.cli import cli

    runner = CliRunner()
    listed = runner.invoke(cli, ["models", "list"])
    assert listed.exit_code == 0, listed.output
    assert result.version in listed.output and again.version in listed.output
    assert (
        f"champion {result.version}, predicting {chosen.target()} {chosen.horizon} bar(s)"
        f" ahead ({chosen.name})" in listed.output
    )
    shown = runner.invoke(cli, ["models", "show"])
    assert shown.exit_code == 0 and json.loads(shown.output)["version"] == result.version
    refused = runner.invoke(cli, ["models", "promote", again.version])
    assert refused.exit_code == 1 and "rejected" in refused.output
    assert registry.champion_version(marts_url) == result.version


def test_a_chosen_linear_candidate_is_recorded_and_not_served(marts_url: str, tmp_path) -> None:
    only_linear = EvalConfig(n_folds=2, embargo_bars=5, purge_bars=1, candidates=("logistic_h1",))
    result = train(DatasetSpec(), model_config=FAST, eval_config=only_linear, report_root=tmp_path)
    assert result.metrics.chosen == "logistic_h1" and result.metrics.servable is False
    assert result.status == "rejected"
    assert "logistic_h1 cannot be served" in result.reason
    doc = json.loads((result.report.parent / "metrics.json").read_text())
    assert doc["stored_classifier"] == "catboost_h1 (fallback)"
    # the registry row says what the stored (fallback) classifier predicts
    row = registry.get_model(result.version, url=marts_url)
    assert (row.candidate, row.horizon_bars, row.target) == ("catboost_h1", 1, "target_up")
    assert len(doc["linear_model"]["coefficients"]) == len(doc["linear_model"]["features"]) + 3
    assert "## Candidates" in result.report.read_text()
