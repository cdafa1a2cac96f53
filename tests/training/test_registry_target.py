"""The registry says what each model's stored classifier predicts (candidate, horizon_bars,
target): migration 0007's defaults are the reference candidate's, and its backfill gives the
rows registered before it the chosen candidate when that one was stored."""

from __future__ import annotations

import re
from dataclasses import fields

import psycopg
from psycopg.types.json import Jsonb

from klinehouse import paths
from training import registry
from training.candidates import CANDIDATES, REFERENCE

MIGRATION = paths.REPO_ROOT / "klinehouse/migrations/0007_model_target.sql"


def test_the_migrations_defaults_are_the_reference_candidates() -> None:
    text = MIGRATION.read_text()
    defaults = dict(
        re.findall(r"ADD COLUMN IF NOT EXISTS (\w+) \w+ NOT NULL DEFAULT ([^,;\n]+)", text)
    )
    reference = CANDIDATES[REFERENCE]
    assert defaults == {
        "candidate": f"'{reference.name}'",
        "horizon_bars": str(reference.horizon),
        "target": f"'{reference.target()}'",
    }
    champion = {f.name: f.default for f in fields(registry.ChampionModel)}
    assert (champion["candidate"], champion["horizon_bars"], champion["target"]) == (
        reference.name,
        reference.horizon,
        reference.target(),
    )


def _insert(conn: psycopg.Connection, version: str, metrics: dict[str, object]) -> None:
    conn.execute(
        "INSERT INTO ml.model_registry (version, status, market, interval, symbols, features,"
        " train_start, train_end, buy_threshold, sell_threshold, fee_rate, seed, code_version,"
        " data_fingerprint, metrics, artifact_uri) VALUES (%s, 'challenger', 'spot', '1h',"
        " '{BTCUSDT}', '{}', now(), now(), 0.6, 0.4, 0.001, 0, 'test', '{}', %s, 's3://b/m/')",
        (version, Jsonb(metrics)),
    )


def test_the_backfill_names_the_stored_candidate_and_old_rows_load(database_url: str) -> None:
    base = {
        "classifier": {"log_loss": 0.69},
        "majority": {"log_loss": 0.693},
        "momentum": {"log_loss": 0.7},
        "backtest": {
            "model": {"net_return": 0.0},
            "buy_and_hold": {"net_return": 0.0},
            "momentum": {"net_return": 0.0},
        },
    }
    h24 = {"horizon": 24, "target": "target_up_24", "forecast": {"log_loss": 0.69}}
    linear = {"horizon": 1, "target": "target_up", "forecast": {"log_loss": 0.69}}
    backtest = {"backtest": {"net_return": 0.0}}
    with psycopg.connect(database_url) as conn:
        _insert(conn, "before-candidates", base)
        _insert(
            conn,
            "chose-h24",
            {**base, "chosen": "catboost_h24", "servable": True,
             "candidates": {"catboost_h24": {**h24, **backtest}}},
        )  # fmt: skip
        _insert(
            conn,
            "chose-linear",
            {**base, "chosen": "logistic_h1", "servable": False,
             "candidates": {"logistic_h1": {**linear, **backtest}}},
        )  # fmt: skip
        # the migration's backfill, as it ran on the rows registered before it
        (update,) = re.findall(
            r"^UPDATE ml\.model_registry.*?;", MIGRATION.read_text(), re.S | re.M
        )
        conn.execute(update)
        conn.commit()
    got = {
        r.version: (r.candidate, r.horizon_bars, r.target)
        for r in registry.list_models(url=database_url)
    }
    assert got == {
        "before-candidates": ("catboost_h1", 1, "target_up"),
        "chose-h24": ("catboost_h24", 24, "target_up_24"),
        # a chosen candidate that cannot be served: the fallback classifier was stored
        "chose-linear": ("catboost_h1", 1, "target_up"),
    }
