"""The registry's facts have one home: the champion predicate (and the migration's
copy of it), and the advice rule the backtest, the registry and the service share."""

from __future__ import annotations

import re

import pytest

from klinehouse import paths
from training.backtest import Advice
from training.registry import CHAMPION, CHAMPION_VERSION_SQL, CHAMPIONS_SQL


def test_the_migrations_champion_index_uses_the_registrys_predicate() -> None:
    text = (paths.REPO_ROOT / "klinehouse/migrations/0006_champion_per_series.sql").read_text()
    assert "DROP INDEX IF EXISTS ml.model_registry_one_champion;" in text
    index = re.search(r"CREATE UNIQUE INDEX[^;]*model_registry_one_champion_per_series[^;]*;", text)
    assert index is not None
    assert "(market, interval)" in index.group(0)
    assert index.group(0).rstrip(";").endswith(f"WHERE {CHAMPION}")
    assert CHAMPION_VERSION_SQL.endswith(f"WHERE {CHAMPION}")
    assert CHAMPIONS_SQL.endswith(f"WHERE {CHAMPION}")


def test_no_other_module_writes_the_champion_predicate() -> None:
    packages = ("klinehouse", "extract", "transform", "training", "inference", "app")
    sources = [p for pkg in packages for p in (paths.REPO_ROOT / pkg).rglob("*.py")]
    assert sources
    offenders = [
        str(p.relative_to(paths.REPO_ROOT))
        for p in sources
        if "WHERE status = 'champion'" in p.read_text() and p.name != "registry.py"
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("p_up", "signal"),
    [(0.6, "buy"), (0.55, "buy"), (0.5, "hold"), (0.45, "sell"), (0.1, "sell")],
)
def test_one_advice_rule_for_backtest_registry_and_service(p_up: float, signal: str) -> None:
    from inference.advice import advice_of
    from klinehouse.v1 import prediction_service_pb2 as pb
    from training.registry import ChampionModel

    advice = Advice(0.55, 0.45)
    assert advice.signal(p_up) == signal
    model = ChampionModel("v", 0.55, 0.45, False, (), None, None)  # type: ignore[arg-type]
    assert model.advice(p_up) == signal
    proto = {"buy": pb.ADVICE_BUY, "sell": pb.ADVICE_SELL, "hold": pb.ADVICE_HOLD}
    assert advice_of(p_up, model) == proto[signal]
