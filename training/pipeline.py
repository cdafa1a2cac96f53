"""`klinehouse train`: read the marts, evaluate walk-forward, fit the model to
register, write the report, store the artefacts and apply the promotion rule."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from catboost import CatBoostClassifier, CatBoostRegressor

from klinehouse import paths
from klinehouse.errors import KlinehouseError
from klinehouse.features import FEATURES
from klinehouse.settings import get_settings
from training import candidates as cand
from training import pools, registry
from training.backtest import Advice
from training.dataset import DatasetSpec, fingerprint, labelled, load_dataset
from training.evaluate import EvalConfig, Evaluation, choose_thresholds, evaluate
from training.models import ModelConfig, predict_up
from training.records import Metrics, ModelRecord, SeriesFingerprint
from training.report import write_report


@dataclass(frozen=True)
class TrainResult:
    version: str
    report: Path  # summary.md of the run folder
    metrics: Metrics
    status: str  # champion | rejected | not registered
    reason: str
    artifact_uri: str | None
    evaluation: Evaluation


def code_version() -> str:
    """The git commit of the code that trained (with -dirty for local changes)."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=paths.REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import version

        return f"klinehouse-{version('klinehouse')}"


def _version(fp: dict[str, Any], model_config: ModelConfig) -> str:
    digest = hashlib.sha256(
        json.dumps({"data": fp, "model": model_config.as_dict()}, sort_keys=True).encode()
    ).hexdigest()[:8]
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{digest}"


def reports_dir() -> Path:
    return paths.home() / "reports" / "train"


def train(
    spec: DatasetSpec,
    *,
    model_config: ModelConfig | None = None,
    eval_config: EvalConfig | None = None,
    url: str | None = None,
    register: bool = True,
    report_root: Path | None = None,
) -> TrainResult:
    model_config = model_config or ModelConfig()
    eval_config = eval_config or EvalConfig()
    frame = load_dataset(spec, url=url)
    if frame.is_empty():
        raise KlinehouseError(
            f"no rows in marts.candle_features for {spec.market} {spec.interval}"
            f"{' ' + ','.join(spec.symbols) if spec.symbols else ''}: load and transform data first"
        )
    fp = fingerprint(frame)
    data = labelled(frame)
    del frame  # the unlabelled rows served the fingerprint only
    symbols = sorted(data.get_column("symbol").unique().to_list())
    times = data.get_column("open_time")
    train_start, train_end, rows = times.min(), times.max(), data.height
    del times
    evaluation = evaluate(
        data, interval=spec.interval, model_config=model_config, config=eval_config
    )
    chosen = cand.CANDIDATES[evaluation.chosen]
    known = cand.known_targets(data, [chosen], eval_config.fee_rate)
    del data
    model, classifier, regressor, advice = _final_fit(
        known, chosen, model_config, eval_config, spec.interval
    )
    del known
    servable = isinstance(model, CatBoostClassifier)
    stored = chosen if servable else cand.CANDIDATES[cand.REFERENCE]  # what is served
    if isinstance(model, CatBoostClassifier):
        importance = dict(
            zip(FEATURES, (float(v) for v in classifier.get_feature_importance()), strict=True)
        )
    else:
        importance = dict(zip(model.features, (abs(v) for v in model.coefficients), strict=False))

    version = _version(fp, model_config)
    metrics = evaluation.metrics.model_copy(update={"servable": servable})
    doc: dict[str, Any] = {
        "version": version,
        "spec": {**asdict(spec), "symbols": list(spec.symbols or [])},
        "symbols": symbols,
        "rows": rows,
        "train_start": train_start,
        "train_end": train_end,
        "features": list(FEATURES),
        "model_config": model_config.as_dict(),
        "eval_config": eval_config.as_dict(),
        "buy_threshold": advice.buy_threshold,
        "sell_threshold": advice.sell_threshold,
        "allow_short": advice.allow_short,
        "candidate": chosen.name,
        "candidate_description": chosen.describe(),
        "horizon_bars": chosen.horizon,
        "target": chosen.target(),
        "linear_model": model.as_dict() if isinstance(model, cand.LogisticModel) else None,
        "stored_classifier": chosen.name if servable else f"{cand.REFERENCE} (fallback)",
        "final_iterations": {
            "classifier": int(classifier.tree_count_ or 0),
            "regressor": int(regressor.tree_count_ or 0),
        },
        "feature_importance": importance,
        "data_fingerprint": fp,
        "code_version": code_version(),
        "metrics": metrics,
    }
    status, reason, artifact_uri = "not registered", "", None
    if register:
        artifact_uri = registry.store_artifacts(version, classifier, regressor, doc)
        outcome = registry.record(
            ModelRecord(
                version=version,
                market=spec.market,
                interval=spec.interval,
                symbols=symbols,
                features=list(FEATURES),
                train_start=doc["train_start"],
                train_end=doc["train_end"],
                buy_threshold=advice.buy_threshold,
                sell_threshold=advice.sell_threshold,
                allow_short=advice.allow_short,
                fee_rate=eval_config.fee_rate,
                seed=model_config.seed,
                code_version=doc["code_version"],
                data_fingerprint={k: SeriesFingerprint.model_validate(v) for k, v in fp.items()},
                metrics=metrics,
                artifact_uri=artifact_uri,
                candidate=stored.name,
                horizon_bars=stored.horizon,
                target=stored.target(),
            ),
            url=url,
        )
        status, reason = outcome.status, outcome.reason
    doc.update(status=status, reason=reason, artifact_uri=artifact_uri)
    folder = (report_root or reports_dir()) / version
    summary = write_report(
        folder,
        doc,
        returns=evaluation.backtest_returns,
        predictions=evaluation.predictions,
        importance=importance,
        candidate_returns=evaluation.candidate_returns,
    )
    if register:
        _upload_report(folder, version)
    return TrainResult(version, summary, metrics, status, reason, artifact_uri, evaluation)


def _final_fit(
    known: pl.DataFrame,
    chosen: cand.Candidate,
    model_config: ModelConfig,
    eval_config: EvalConfig,
    interval: str,
) -> tuple[cand.Fitted, CatBoostClassifier, CatBoostRegressor, Advice]:
    """The models to register, fitted on every labelled row (`known`, sorted by open
    time): early stopping and the thresholds on the last part (`holdout`'s split). The
    CatBoost fits go through the float32 matrix and quantized pools
    (`training.pools.fit_frame`: the same models as on frames, less memory). A chosen
    candidate that is not a CatBoost classifier (not servable: the rule refuses it,
    naming why) is fitted on the frame; the artefacts are then the reference CatBoost classifier with its own
    thresholds, so that a hand promotion serves a consistent model (metadata.json says
    which candidate was evaluated and which stored).

    Returns (the chosen candidate's model, the classifier to store, the regressor, the
    stored classifier's advice)."""
    servable = chosen.family == "catboost"
    target = chosen.target() if servable else cand.CANDIDATES[cand.REFERENCE].target()
    fits = pools.fit_frame(
        known,
        [target],
        model_config,
        fraction=eval_config.validation_fraction,
        gap_bars=eval_config.gap_bars,
    )
    classifier, regressor = fits.classifiers[target], fits.regressor
    fit_rows = known.slice(0, fits.fit.stop)
    val_rows = known.slice(fits.validation.start, fits.validation.stop - fits.validation.start)
    if servable:
        advice, _ = choose_thresholds(
            val_rows,
            predict_up(classifier, val_rows),
            eval_config,
            interval,
            centre=cand.centre(chosen, fit_rows),
        )
        return classifier, classifier, regressor, advice
    model = cand.fit(chosen, fit_rows, val_rows, model_config)
    advice, _ = choose_thresholds(val_rows, predict_up(classifier, val_rows), eval_config, interval)
    return model, classifier, regressor, advice


def _upload_report(folder: Path, version: str) -> None:
    """A copy of the run folder beside the model in the lake, so the report outlives the host."""
    from klinehouse import lake

    settings = get_settings()
    client = lake.s3_client(settings)
    prefix = registry.artifact_prefix(version, settings)
    for path in sorted(folder.iterdir()):
        client.put_object(
            Bucket=settings.lake_bucket, Key=f"{prefix}/report/{path.name}", Body=path.read_bytes()
        )
