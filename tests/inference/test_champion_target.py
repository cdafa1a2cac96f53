"""Every prediction says what the served champion predicts: which candidate, how many bars
ahead and which target (the registry's columns), on a real port, for GetPrediction,
GetAdvice and StreamPredictions."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from inference.server import ServerThread
from klinehouse.settings import Settings
from klinehouse.v1 import prediction_service_pb2 as pb
from training import registry

from .conftest import serve_clone
from .test_predictions import register, stub_of, wait_for_version


@pytest.fixture
def served(
    predicting_template: str,
    stack: Settings,
    lake_settings: Settings,
    server_factory: Callable[..., ServerThread],
) -> Iterator[tuple[str, ServerThread]]:
    with serve_clone(stack, predicting_template, "target_t_", server_factory) as served:
        yield served


def _what(p: pb.Prediction) -> tuple[str, int, str]:
    return p.candidate, p.horizon_bars, p.target


def test_predictions_name_the_champions_candidate_horizon_and_target(
    served: tuple[str, ServerThread],
) -> None:
    owner_url, server = served
    stub = stub_of(server)
    register(owner_url, "m24", buy=0.0, sell=0.0, quality=0.01, candidate="catboost_h24")
    stored = registry.get_model("m24", url=owner_url)
    assert (stored.candidate, stored.horizon_bars, stored.target) == (
        "catboost_h24",
        24,
        "target_up_24",
    )

    expected = ("catboost_h24", 24, "target_up_24")
    assert _what(wait_for_version(stub, "m24").prediction) == expected
    advice = stub.GetAdvice(pb.GetAdviceRequest(interval="1h"), timeout=5)
    assert advice.ranked and all(_what(p) == expected for p in advice.ranked)
    assert _what(advice.best_buy) == expected
    call = stub.StreamPredictions(
        pb.StreamPredictionsRequest(symbols=["ETHUSDT"], interval="1h"), timeout=10
    )
    first = next(call).prediction
    call.cancel()
    assert first.symbol == "ETHUSDT" and _what(first) == expected

    # a new champion of another candidate: the answers follow it
    register(owner_url, "mfee", buy=0.0, sell=0.0, quality=0.02, candidate="catboost_fee_h4")
    assert _what(wait_for_version(stub, "mfee").prediction) == (
        "catboost_fee_h4",
        4,
        "target_beats_fee_4",
    )


def test_the_cli_line_of_a_prediction_names_what_it_predicts() -> None:
    from inference.client import format_prediction

    p = pb.Prediction(
        symbol="BTCUSDT",
        interval="1h",
        advice=pb.ADVICE_HOLD,
        model_version="m24",
        candidate="catboost_h24",
        horizon_bars=24,
        target="target_up_24",
    )
    assert "catboost_h24: target_up_24 over 24 bar(s)" in format_prediction(p)
