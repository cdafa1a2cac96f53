"""The pipeline on the real 5-symbol 1h freqtrade data (2022-01 … 2023-03), through
the project's import path and dbt: trains, registers, never lets a test bar's label
window touch a training window, passes the shuffled-label check, is reproducible,
and the registry refuses a worse model."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from training import registry
from training.candidates import known_targets, resolve
from training.dataset import DatasetSpec, labelled, load_dataset
from training.evaluate import EvalConfig
from training.folds import split, walk_forward
from training.models import ModelConfig
from training.pipeline import TrainResult, train
from training.report_candidates import console_lines

from .conftest import RealWarehouse

# small enough for CI on 2 cores, large enough to learn something: every candidate is
# fitted per fold, for the leakage check and once more to register, and `train` runs
# twice with this config (the reproducibility check), so few trees at a higher rate
MODEL = ModelConfig(iterations=60, depth=4, learning_rate=0.1, seed=7)
EVAL = EvalConfig(n_folds=3, embargo_bars=24)
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def first_run(real_warehouse: RealWarehouse) -> TrainResult:
    t0 = time.monotonic()
    result = train(
        DatasetSpec("spot", "1h"),
        model_config=MODEL,
        eval_config=EVAL,
        report_root=real_warehouse.reports,
    )
    print(f"training took {time.monotonic() - t0:.1f}s: {result.status} {result.reason}")
    return result


def test_pipeline_trains_and_registers(
    real_warehouse: RealWarehouse, first_run: TrainResult
) -> None:
    row = registry.get_model(first_run.version, url=real_warehouse.url)
    assert row.status in {"champion", "rejected"}
    assert sorted(row.symbols) == ["BNBUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]
    assert row.data_fingerprint["spot/BTCUSDT/1h"].rows == 10235
    assert row.data_fingerprint["spot/BTCUSDT/1h"].last_open_time.startswith("2023-03-03T10:00")
    assert row.status_reason
    for name in (
        "summary.md",
        "metrics.json",
        "equity.png",
        "calibration.png",
        "feature_importance.png",
    ):
        assert (first_run.report.parent / name).stat().st_size > 0
    meta = registry.read_metadata(first_run.version, url=real_warehouse.url)
    assert meta["version"] == first_run.version
    print(first_run.report.read_text())


def test_no_test_label_window_overlaps_a_training_window(
    real_warehouse: RealWarehouse, first_run: TrainResult
) -> None:
    candidates = resolve(EVAL.candidates)
    data = known_targets(
        labelled(load_dataset(DatasetSpec("spot", "1h"), url=real_warehouse.url)),
        candidates,
        EVAL.fee_rate,
    )
    longest = max(c.horizon for c in candidates)
    assert EVAL.purge_bars >= longest == 24
    folds = walk_forward(
        data["open_time"],
        n_folds=EVAL.n_folds,
        purge_bars=EVAL.purge_bars,
        embargo_bars=EVAL.embargo_bars,
    )
    assert [f.test_start for f in first_run.metrics.folds] == [
        f.test_start.isoformat() for f in folds
    ]
    for fold in folds:
        train_rows, test_rows = split(data, fold)
        last_train: datetime = train_rows["open_time"].max()  # type: ignore[assignment]
        first_test: datetime = test_rows["open_time"].min()  # type: ignore[assignment]
        # the longest label of bar t spans (close_t, close_{t+h}] = (t + 1h, t + (1+h)h]
        train_label_end = last_train + (1 + longest) * HOUR
        test_label_start = first_test + HOUR
        assert train_label_end <= test_label_start
        # and the embargo keeps more bars apart than the purge alone
        assert first_test - last_train > (longest + EVAL.embargo_bars) * HOUR
    # the evaluation used exactly those rows
    for f in first_run.metrics.folds:
        assert f.train_last_open_time is not None and f.test_first_open_time is not None
        assert (
            datetime.fromisoformat(f.train_last_open_time) + (1 + longest) * HOUR
            <= datetime.fromisoformat(f.test_first_open_time) + HOUR
        )


def test_every_candidate_is_evaluated_and_the_rule_gives_its_reasons(
    first_run: TrainResult,
) -> None:
    m = first_run.metrics
    assert set(m.candidates) == set(EVAL.candidates)
    assert m.chosen in m.candidates
    guards = m.guards
    assert guards is not None and guards.pbo is not None
    assert guards.deflated_sharpe.trials == len(EVAL.candidates) * EVAL.threshold_settings
    assert guards.pbo.columns == len(EVAL.candidates)
    for line in console_lines(m):
        print(line)
    if first_run.status == "rejected":  # every failed condition is named
        assert first_run.reason and all(part.strip() for part in first_run.reason.split(";"))
    summary = first_run.report.read_text()
    assert "## Candidates" in summary and "## Selection-bias guards" in summary


def test_shuffled_labels_give_chance_auc(first_run: TrainResult) -> None:
    leak = first_run.metrics.leakage_check
    assert leak is not None and leak.shuffled_label_auc is not None
    assert abs(leak.shuffled_label_auc - 0.5) <= 0.03
    assert leak.passed


def test_same_seed_same_metrics_and_no_promotion_without_improvement(
    real_warehouse: RealWarehouse, first_run: TrainResult
) -> None:
    if first_run.status != "champion":
        registry.promote(first_run.version, force=True, url=real_warehouse.url)
    again = train(
        DatasetSpec("spot", "1h"),
        model_config=MODEL,
        eval_config=EVAL,
        report_root=real_warehouse.reports,
    )
    assert again.metrics.to_json() == first_run.metrics.to_json()
    assert again.status == "rejected"
    assert "champion" in again.reason
    assert registry.champion_version(real_warehouse.reader_url) == first_run.version


def test_promotion_refuses_a_worse_model(
    real_warehouse: RealWarehouse, first_run: TrainResult
) -> None:
    if registry.champion_version(real_warehouse.url) != first_run.version:
        registry.promote(first_run.version, force=True, url=real_warehouse.url)
    # one tree at a tiny learning rate: a coin flip with the majority's log loss at best
    weak = ModelConfig(iterations=1, depth=1, learning_rate=1e-4, seed=7)
    worse = train(
        DatasetSpec("spot", "1h"),
        model_config=weak,
        eval_config=EVAL,
        report_root=real_warehouse.reports,
    )
    print("worse:", worse.metrics.classifier, worse.reason)
    assert worse.status == "rejected"
    assert "does not beat" in worse.reason
    assert registry.get_model(worse.version, url=real_warehouse.url).status == "rejected"
    outcome = registry.promote(worse.version, url=real_warehouse.url)
    assert outcome.status == "rejected"
    assert registry.champion_version(real_warehouse.reader_url) == first_run.version


def test_champion_serves_as_the_reader_role(
    real_warehouse: RealWarehouse, first_run: TrainResult
) -> None:
    if registry.champion_version(real_warehouse.url) != first_run.version:
        registry.promote(first_run.version, force=True, url=real_warehouse.url)
    champion = registry.load_champion(real_warehouse.reader_url)
    assert champion is not None and champion.version == first_run.version
    latest = load_dataset(
        DatasetSpec("spot", "1h", start=datetime.fromisoformat("2023-03-03T00:00:00+00:00")),
        url=real_warehouse.url,
    )
    out = champion.predict(latest)
    assert out.height == latest.height == 5 * 11
    assert out["p_up"].is_between(0.0, 1.0).all()
    assert champion.sell_threshold <= champion.buy_threshold
