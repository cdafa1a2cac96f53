"""The model registry: artefacts in the lake, the index and the champions in
`ml.model_registry`.

There is one champion per (market, interval) — a series family — (a partial unique
index keeps it one). A challenger becomes its pair's champion only if, out of
sample, it beats that pair's current champion and every baseline on log loss and
on the net backtest, passes the leakage check and the risk conditions of
`training.promotion` (Sharpe over buy-and-hold, a bootstrap bound, the deflated
Sharpe ratio); otherwise it is kept, marked rejected, with every failed condition in
the reason. A promotion sends `NOTIFY klinehouse_models` with the pair
(`ChampionChange`); the gRPC service reads the champions as `klinehouse_reader`
through `load_champion(market, interval)`, polls `CHAMPIONS_SQL` (a few indexed
rows) and reloads only the pair that changed.
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
from pydantic import BaseModel, ConfigDict, ValidationError

from klinehouse import channels, lake
from klinehouse.db import connect
from klinehouse.errors import KlinehouseError
from klinehouse.features import FEATURES, LABEL_CLASS, LABEL_HORIZON_BARS
from klinehouse.settings import Settings, get_settings
from training.backtest import Advice, Signal
from training.candidates import REFERENCE
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
# A champion per (market, interval) (a partial unique index keeps it one per pair):
# every reader of them goes through these
CHAMPION = "status = 'champion'"
CHAMPION_VERSION_SQL = f"SELECT version FROM {TABLE} WHERE {CHAMPION}"
# every pair's champion: (market, interval, version), served by the partial index
CHAMPIONS_SQL = f"SELECT market, interval, version FROM {TABLE} WHERE {CHAMPION}"
PAIR = "market = %(market)s AND interval = %(interval)s"

_COLUMNS = (
    "version, created_at, status, status_reason, promoted_at, market, interval, symbols,"
    " features, train_start, train_end, buy_threshold, sell_threshold, allow_short, fee_rate,"
    " seed, code_version, data_fingerprint, metrics, artifact_uri, candidate, horizon_bars, target"
)
_INSERTED = (
    "version, status, market, interval, symbols, features, train_start, train_end,"
    " buy_threshold, sell_threshold, allow_short, fee_rate, seed, code_version,"
    " data_fingerprint, metrics, artifact_uri, candidate, horizon_bars, target"
)


def champion_query(columns: str) -> str:
    """SELECT `columns` of the champion's row of the pair %(market)s, %(interval)s (at most one)."""
    return f"SELECT {columns} FROM {TABLE} WHERE {CHAMPION} AND {PAIR}"


class ChampionChange(BaseModel):
    """The payload of `NOTIFY klinehouse_models`: which pair got a new champion."""

    model_config = ConfigDict(frozen=True)

    market: str
    interval: str
    version: str

    @classmethod
    def parse(cls, payload: str) -> ChampionChange | None:
        """The change a notification announces, or None for a payload without a pair."""
        try:
            return cls.model_validate_json(payload)
        except ValidationError:
            return None


@dataclass(frozen=True)
class Registration:
    version: str
    status: str
    reason: str
    artifact_uri: str


def _champion_metrics(conn: Any, market: str, interval: str) -> tuple[str, Metrics] | None:
    row = conn.execute(
        champion_query("version, metrics"), {"market": market, "interval": interval}
    ).fetchone()
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
        champion = _champion_metrics(conn, model.market, model.interval)
        decision = decide(Metrics.of(doc["metrics"]), champion[1] if champion else None)
        change = ChampionChange(market=model.market, interval=model.interval, version=model.version)
        status = _apply(conn, change, decision, champion[0] if champion else None)
    return Registration(model.version, status, decision.reason, model.artifact_uri)


def _apply(conn: Any, change: ChampionChange, decision: Decision, champion: str | None) -> str:
    """Apply the decision on `change.version`; `champion` is its pair's current one."""
    version = change.version
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
        # the gRPC service LISTENs here and reloads this pair at once (it also polls)
        conn.execute("SELECT pg_notify(%s, %s)", (channels.MODELS, change.model_dump_json()))
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
            f"SELECT status, metrics, artifact_uri, market, interval FROM {TABLE}"
            " WHERE version = %s",
            (version,),
        ).fetchone()
        if row is None:
            raise KlinehouseError(f"no model {version!r} in {TABLE}")
        if row[0] == "champion":
            return Registration(version, "champion", "already the champion", row[2])
        change = ChampionChange(market=row[3], interval=row[4], version=version)
        champion = _champion_metrics(conn, change.market, change.interval)
        decision = decide(Metrics.of(row[1]), champion[1] if champion else None)
        if force and not decision.promote:
            decision = Decision(True, f"promoted by hand despite: {decision.reason}")
        status = _apply(conn, change, decision, champion[0] if champion else None)
    return Registration(version, status, decision.reason, row[2])


def _model_record(row: dict[str, Any]) -> ModelRecord:
    return ModelRecord.model_validate({**row, "status_reason": row["status_reason"] or ""})


def list_models(
    *,
    url: str | None = None,
    limit: int = 50,
    market: str | None = None,
    interval: str | None = None,
) -> list[ModelRecord]:
    """The newest `limit` models of each (market, interval), by pair, newest first;
    `market` / `interval` keep only those."""
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM ("
            f" SELECT *, row_number() OVER (PARTITION BY market, interval"
            "  ORDER BY created_at DESC, version DESC) AS newest"
            f" FROM {TABLE}"
            "  WHERE (%(market)s::text IS NULL OR market = %(market)s)"
            "  AND (%(interval)s::text IS NULL OR interval = %(interval)s)"
            ") m WHERE newest <= %(limit)s"
            " ORDER BY market, interval, created_at DESC, version DESC",
            {"limit": limit, "market": market, "interval": interval},
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
    market: str = "spot"
    interval: str = "1h"
    # what `classifier` predicts (`ModelRecord.candidate`, `horizon_bars`, `target`)
    candidate: str = REFERENCE
    horizon_bars: int = LABEL_HORIZON_BARS
    target: str = LABEL_CLASS

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


def champions(url: str | None = None) -> dict[tuple[str, str], str]:
    """Every pair's champion version by (market, interval) (a few indexed rows)."""
    url = url or get_settings().reader_url()
    with connect(url) as conn:
        rows = conn.execute(CHAMPIONS_SQL).fetchall()
    return {(str(m), str(i)): str(v) for m, i, v in rows}


def champion_version(
    url: str | None = None, *, market: str = "spot", interval: str = "1h"
) -> str | None:
    """The champion's version of one (market, interval) (one indexed row)."""
    url = url or get_settings().reader_url()
    with connect(url) as conn:
        row = conn.execute(
            champion_query("version"), {"market": market, "interval": interval}
        ).fetchone()
    return str(row[0]) if row else None


def load_champion(
    url: str | None = None,
    *,
    market: str = "spot",
    interval: str = "1h",
    settings: Settings | None = None,
) -> ChampionModel | None:
    """The champion of (market, interval) with its models loaded from the lake, or None
    when that pair has none.

    Reads the registry as `klinehouse_reader` by default (the serving role)."""
    settings = settings or get_settings()
    url = url or settings.reader_url()
    with connect(url) as conn:
        row = conn.execute(
            champion_query(
                "version, buy_threshold, sell_threshold, allow_short, features,"
                " artifact_uri, train_end, candidate, horizon_bars, target"
            ),
            {"market": market, "interval": interval},
        ).fetchone()
    if row is None:
        return None
    version, buy, sell, allow_short, features, uri, train_end, candidate, horizon, target = row
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
        market=market,
        interval=interval,
        candidate=str(candidate),
        horizon_bars=int(horizon),
        target=str(target),
    )


def read_metadata(version: str, *, url: str | None = None) -> dict[str, Any]:
    settings = get_settings()
    uri = get_model(version, url=url).artifact_uri
    return dict(json.loads(_read_object(uri, METADATA_FILE, settings)))
