"""The model registry: artefacts in the lake, the index and the champion in
`ml.model_registry`.

A challenger becomes champion only if, out of sample, it beats the current
champion and every baseline on log loss and on the net backtest, passes the
leakage check and the risk conditions of `training.promotion` (Sharpe over
buy-and-hold, a bootstrap bound, the deflated Sharpe ratio); otherwise it is kept,
marked rejected, with every failed condition in the reason. The gRPC
service reads the champion as `klinehouse_reader` through `load_champion()` and
polls `champion_version()` (one indexed row) to hot-reload a newly promoted one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
from catboost import CatBoostClassifier, CatBoostRegressor
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from klinehouse import channels, lake
from klinehouse.db import connect
from klinehouse.errors import KlinehouseError
from klinehouse.features import FEATURES
from klinehouse.settings import Settings, get_settings
from training.backtest import Advice, Signal
from training.models import predict_return, predict_up
from training.promotion import risk_problems
from training.records import Metrics, ModelRecord, jsonable

__all__ = ["Metrics", "ModelRecord", "jsonable"]

CLASSIFIER_FILE = "classifier.cbm"
REGRESSOR_FILE = "regressor.cbm"
METADATA_FILE = "metadata.json"
# a champion must be beaten by a margin, not by noise in the last decimal
MIN_LOG_LOSS_IMPROVEMENT = 1e-6


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(challenger: Metrics, champion: Metrics | None) -> Decision:
    """The promotion rule on two runs' metrics (see the module docstring)."""
    problems: list[str] = []
    leak = challenger.leakage_check
    if leak is not None and not leak.passed:
        problems.append(
            f"leakage check failed: shuffled-label AUC {leak.shuffled_label_auc}"
            f" is not within 0.5 ± {leak.tolerance}"
        )
    loss = challenger.classifier.log_loss
    net = challenger.backtest.model.net_return
    for name, baseline in (("majority", challenger.majority), ("momentum", challenger.momentum)):
        other = baseline.log_loss
        if not loss < other:
            problems.append(f"log loss {loss:.6f} does not beat the {name} baseline ({other:.6f})")
    for name, strategy in (
        ("buy_and_hold", challenger.backtest.buy_and_hold),
        ("momentum", challenger.backtest.momentum),
    ):
        other = strategy.net_return
        if not net > other:
            problems.append(f"net return {net:+.4f} does not beat {name} ({other:+.4f})")
    problems += risk_problems(challenger)
    if champion is not None:
        champ_loss = champion.classifier.log_loss
        champ_net = champion.backtest.model.net_return
        if not loss < champ_loss - MIN_LOG_LOSS_IMPROVEMENT:
            problems.append(f"log loss {loss:.6f} does not beat the champion's ({champ_loss:.6f})")
        if not net > champ_net:
            problems.append(
                f"net return {net:+.4f} does not beat the champion's ({champ_net:+.4f})"
            )
    if problems:
        return Decision(False, "; ".join(problems))
    against = "the champion and the baselines" if champion else "the baselines (no champion yet)"
    return Decision(
        True,
        f"beats {against} on out-of-sample log loss and net backtest; Sharpe, bootstrap"
        " bound and deflated Sharpe pass",
    )


# ---------------------------------------------------------------- storage


def _model_bytes(model: CatBoostClassifier | CatBoostRegressor) -> bytes:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.cbm"
        model.save_model(str(path), format="cbm")
        return path.read_bytes()


def artifact_prefix(version: str, settings: Settings | None = None) -> str:
    return lake.key("models", version, settings=settings)


def store_artifacts(
    version: str,
    classifier: CatBoostClassifier,
    regressor: CatBoostRegressor,
    metadata: dict[str, Any],
    settings: Settings | None = None,
) -> str:
    """Write the two .cbm files and metadata.json to the lake; returns the folder's s3:// URL."""
    settings = settings or get_settings()
    client = lake.s3_client(settings)
    prefix = artifact_prefix(version, settings)
    objects = {
        CLASSIFIER_FILE: _model_bytes(classifier),
        REGRESSOR_FILE: _model_bytes(regressor),
        METADATA_FILE: json.dumps(jsonable(metadata), indent=2).encode(),
    }
    for name, body in objects.items():
        client.put_object(Bucket=settings.lake_bucket, Key=f"{prefix}/{name}", Body=body)
    return lake.url(prefix + "/", settings)


def _read_object(uri: str, name: str, settings: Settings) -> bytes:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    client = lake.s3_client(settings)
    try:
        response = client.get_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/{name}")
    except Exception as exc:  # botocore's error classes are generated at runtime
        raise KlinehouseError(f"cannot read {uri}{name} from the lake: {exc}") from exc
    return bytes(response["Body"].read())


# ---------------------------------------------------------------- the registry table

TABLE = "ml.model_registry"
# The one champion (a partial unique index keeps it one): every reader of it goes through these
CHAMPION = "status = 'champion'"
CHAMPION_VERSION_SQL = f"SELECT version FROM {TABLE} WHERE {CHAMPION}"

_COLUMNS = (
    "version, created_at, status, status_reason, promoted_at, market, interval, symbols,"
    " features, train_start, train_end, buy_threshold, sell_threshold, allow_short, fee_rate,"
    " seed, code_version, data_fingerprint, metrics, artifact_uri"
)
_INSERTED = (
    "version, status, market, interval, symbols, features, train_start, train_end,"
    " buy_threshold, sell_threshold, allow_short, fee_rate, seed, code_version,"
    " data_fingerprint, metrics, artifact_uri"
)


def champion_query(columns: str) -> str:
    """SELECT `columns` of the champion's row (at most one)."""
    return f"SELECT {columns} FROM {TABLE} WHERE {CHAMPION}"


@dataclass(frozen=True)
class Registration:
    version: str
    status: str
    reason: str
    artifact_uri: str


def _champion_metrics(conn: Any) -> tuple[str, Metrics] | None:
    row = conn.execute(champion_query("version, metrics")).fetchone()
    return (str(row[0]), Metrics.of(row[1])) if row else None


def record(model: ModelRecord, *, url: str | None = None) -> Registration:
    """Insert a trained model as a challenger, then apply the promotion rule, in one transaction."""
    doc = model.to_json()
    params = {name: doc.get(name) for name in _INSERTED.split(", ")}
    params.update(
        status="challenger",
        train_start=model.train_start,
        train_end=model.train_end,
        data_fingerprint=Jsonb(doc["data_fingerprint"]),
        metrics=Jsonb(doc["metrics"]),
    )
    placeholders = ", ".join(f"%({name})s" for name in _INSERTED.split(", "))
    with connect(url) as conn, conn.transaction():
        # serialise promotions: two trainings finishing together must not both win
        conn.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
        conn.execute(f"INSERT INTO {TABLE} ({_INSERTED}) VALUES ({placeholders})", params)
        champion = _champion_metrics(conn)
        decision = decide(Metrics.of(doc["metrics"]), champion[1] if champion else None)
        status = _apply(conn, model.version, decision, champion[0] if champion else None)
    return Registration(model.version, status, decision.reason, model.artifact_uri)


def _apply(conn: Any, version: str, decision: Decision, champion: str | None) -> str:
    if decision.promote:
        if champion:
            conn.execute(
                f"UPDATE {TABLE} SET status = 'retired', status_reason = %s WHERE version = %s",
                (f"replaced by {version}", champion),
            )
        conn.execute(
            f"UPDATE {TABLE} SET status = 'champion', status_reason = %s,"
            " promoted_at = now() WHERE version = %s",
            (decision.reason, version),
        )
        # the gRPC service LISTENs here and reloads at once (it also polls champion_version)
        conn.execute("SELECT pg_notify(%s, %s)", (channels.MODELS, version))
        return "champion"
    conn.execute(
        f"UPDATE {TABLE} SET status = 'rejected', status_reason = %s WHERE version = %s",
        (decision.reason, version),
    )
    return "rejected"


def promote(version: str, *, force: bool = False, url: str | None = None) -> Registration:
    """Promote a registered model: by the rule, or by hand with `force` (recorded as such)."""
    with connect(url) as conn, conn.transaction():
        conn.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
        row = conn.execute(
            f"SELECT status, metrics, artifact_uri FROM {TABLE} WHERE version = %s",
            (version,),
        ).fetchone()
        if row is None:
            raise KlinehouseError(f"no model {version!r} in {TABLE}")
        if row[0] == "champion":
            return Registration(version, "champion", "already the champion", row[2])
        champion = _champion_metrics(conn)
        decision = decide(Metrics.of(row[1]), champion[1] if champion else None)
        if force and not decision.promote:
            decision = Decision(True, f"promoted by hand despite: {decision.reason}")
        status = _apply(conn, version, decision, champion[0] if champion else None)
    return Registration(version, status, decision.reason, row[2])


def _model_record(row: dict[str, Any]) -> ModelRecord:
    return ModelRecord.model_validate({**row, "status_reason": row["status_reason"] or ""})


def list_models(*, url: str | None = None, limit: int = 50) -> list[ModelRecord]:
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM {TABLE} ORDER BY created_at DESC, version DESC LIMIT %s",
            (limit,),
        )
        return [_model_record(row) for row in cur.fetchall()]


def get_model(version: str, *, url: str | None = None) -> ModelRecord:
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM {TABLE} WHERE version = %s", (version,))
        row = cur.fetchone()
    if row is None:
        raise KlinehouseError(f"no model {version!r} in {TABLE}")
    return _model_record(row)


# ---------------------------------------------------------------- the champion, for serving


@dataclass
class ChampionModel:
    """The promoted model as the prediction service uses it."""

    version: str
    buy_threshold: float
    sell_threshold: float
    allow_short: bool
    features: tuple[str, ...]
    classifier: CatBoostClassifier
    regressor: CatBoostRegressor
    trained_until: datetime | None = None

    def predict(self, features: pl.DataFrame) -> pl.DataFrame:
        """P(next bar up) and the expected next log return for each row of `features`
        (the columns of `klinehouse.features.FEATURES`; extra columns are ignored, and
        the key columns market, symbol, interval, open_time are passed through)."""
        missing = [c for c in self.features if c not in features.columns]
        if missing:
            raise KlinehouseError(f"features frame lacks column(s): {', '.join(missing)}")
        keys = [c for c in ("market", "symbol", "interval", "open_time") if c in features.columns]
        if features.is_empty():
            return features.select(keys).with_columns(
                pl.lit(None, pl.Float64).alias("p_up"),
                pl.lit(None, pl.Float64).alias("expected_log_return"),
            )
        return features.select(keys).with_columns(
            pl.Series("p_up", predict_up(self.classifier, features)),
            pl.Series("expected_log_return", predict_return(self.regressor, features)),
        )

    def advice(self, p_up: float) -> Signal:
        """'buy', 'sell' or 'hold' for one probability, by the rule of the backtest
        (`training.backtest.Advice.signal`) with the registered thresholds."""
        return Advice(self.buy_threshold, self.sell_threshold, self.allow_short).signal(p_up)


def champion_version(url: str | None = None) -> str | None:
    """The champion's version (one indexed row): poll this to hot-reload."""
    url = url or get_settings().reader_url()
    with connect(url) as conn:
        row = conn.execute(CHAMPION_VERSION_SQL).fetchone()
    return str(row[0]) if row else None


def load_champion(
    url: str | None = None, *, settings: Settings | None = None
) -> ChampionModel | None:
    """The current champion with its models loaded from the lake, or None when there is none.

    Reads the registry as `klinehouse_reader` by default (the serving role)."""
    settings = settings or get_settings()
    url = url or settings.reader_url()
    with connect(url) as conn:
        row = conn.execute(
            champion_query(
                "version, buy_threshold, sell_threshold, allow_short, features,"
                " artifact_uri, train_end"
            )
        ).fetchone()
    if row is None:
        return None
    version, buy, sell, allow_short, features, uri, train_end = row
    if tuple(features) != tuple(FEATURES):
        raise KlinehouseError(
            f"champion {version} was trained on features {features}, this code has {list(FEATURES)}:"
            " retrain or deploy the matching code version"
        )
    classifier = CatBoostClassifier()
    classifier.load_model(blob=_read_object(uri, CLASSIFIER_FILE, settings))
    regressor = CatBoostRegressor()
    regressor.load_model(blob=_read_object(uri, REGRESSOR_FILE, settings))
    return ChampionModel(
        version=str(version),
        buy_threshold=float(buy),
        sell_threshold=float(sell),
        allow_short=bool(allow_short),
        features=tuple(features),
        classifier=classifier,
        regressor=regressor,
        trained_until=train_end,
    )


def read_metadata(version: str, *, url: str | None = None) -> dict[str, Any]:
    settings = get_settings()
    uri = get_model(version, url=url).artifact_uri
    return dict(json.loads(_read_object(uri, METADATA_FILE, settings)))
