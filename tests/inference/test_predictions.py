"""PredictionService with a champion from the real registry (issue 7), hot-reloaded."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta
from typing import Any

import grpc
import polars as pl
import psycopg
import pytest
from psycopg import sql

from inference.server import ServerThread
from klinehouse.features import FEATURES, NUMERIC_FEATURES
from klinehouse.settings import Settings
from klinehouse.v1 import prediction_service_pb2 as pb
from klinehouse.v1 import prediction_service_pb2_grpc
from training import registry

from .conftest import FIRST_OPEN, candles, land_candles, serve_clone


def register(
    owner_url: str,
    version: str,
    *,
    buy: float,
    sell: float,
    quality: float,
    interval: str = "1h",
    candidate: str = "catboost_h1",
) -> None:
    """Train two tiny CatBoost models and record them through the registry's own path
    for spot `interval`, as `candidate` of training.candidates; `quality` > that pair's
    champion's makes the promotion rule pick this one."""
    from training.candidates import CANDIDATES
    from training.models import ModelConfig, fit_classifier, fit_regressor
    from training.synthetic import frame

    rows = frame(bars=120, seed=len(version))
    config = ModelConfig(iterations=10, thread_count=1)
    classifier, regressor = fit_classifier(rows, None, config), fit_regressor(rows, None, config)
    uri = registry.store_artifacts(version, classifier, regressor, {"version": version})
    metrics: dict[str, Any] = {
        "classifier": {"log_loss": 0.69 - quality},
        "majority": {"log_loss": 0.6931},
        "momentum": {"log_loss": 0.7},
        "backtest": {
            "model": {"net_return": quality, "sharpe": 1.0 + quality},
            "buy_and_hold": {"net_return": -0.5, "sharpe": -1.0},
            "momentum": {"net_return": -0.5},
        },
        # the risk conditions of training.promotion pass
        "guards": {"bootstrap": {"lower": 0.01}, "deflated_sharpe": {"probability": 0.99}},
    }
    outcome = registry.record(
        registry.ModelRecord.model_validate({
            "version": version, "market": "spot", "interval": interval,
            "symbols": ["BTCUSDT", "ETHUSDT"], "features": list(FEATURES),
            "train_start": FIRST_OPEN, "train_end": FIRST_OPEN + timedelta(days=1),
            "buy_threshold": buy, "sell_threshold": sell, "allow_short": False,
            "fee_rate": 0.001, "seed": 42, "code_version": "test",
            "data_fingerprint": {}, "metrics": metrics, "artifact_uri": uri,
            "candidate": candidate, "horizon_bars": CANDIDATES[candidate].horizon,
            "target": CANDIDATES[candidate].target(),
        }),
        url=owner_url,
    )  # fmt: skip
    assert outcome.status == "champion", outcome.reason


@pytest.fixture
def predicting(
    predicting_template: str,
    stack: Settings,
    lake_settings: Settings,
    server_factory: Callable[..., ServerThread],
) -> Iterator[tuple[str, ServerThread]]:
    """A clone of the template, served: (owner URL, server)."""
    with serve_clone(stack, predicting_template, "predict_t_", server_factory) as served:
        yield served


def latest_features(owner_url: str, symbol: str) -> pl.DataFrame:
    """The newest feature row of `symbol` as dbt's view computes it (read directly)."""
    with psycopg.connect(owner_url) as conn:
        cur = conn.execute(
            sql.SQL(
                "SELECT {} FROM marts.candle_features_latest WHERE symbol = %s"
                " ORDER BY open_time DESC LIMIT 1"
            ).format(sql.SQL(", ").join(sql.Identifier(c) for c in (*FEATURES, "open_time"))),
            [symbol],
        )
        columns = [d.name for d in cur.description or ()]
        return pl.DataFrame([dict(zip(columns, r, strict=True)) for r in cur.fetchall()])


def stub_of(server: ServerThread) -> prediction_service_pb2_grpc.PredictionServiceStub:
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def wait_for_version(stub: Any, version: str) -> pb.GetPredictionResponse:
    deadline = time.monotonic() + 20
    while True:
        try:
            response = stub.GetPrediction(
                pb.GetPredictionRequest(symbol="BTCUSDT", interval="1h"), timeout=5
            )
            if response.prediction.model_version == version:
                return response
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION, exc.details()
        assert time.monotonic() < deadline, f"model {version} not picked up"
        time.sleep(0.2)


def test_no_champion_is_a_failed_precondition(server: ServerThread) -> None:
    stub = stub_of(server)
    for call in (
        lambda: stub.GetPrediction(
            pb.GetPredictionRequest(symbol="BTCUSDT", interval="1h"), timeout=5
        ),
        lambda: stub.GetAdvice(pb.GetAdviceRequest(interval="1h"), timeout=5),
    ):
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "no champion model" in info.value.details()


def test_predictions_advice_and_hot_reload(predicting: tuple[str, ServerThread]) -> None:
    owner_url, server = predicting
    stub = stub_of(server)
    register(owner_url, "m1", buy=0.0, sell=0.0, quality=0.01)  # P(up) >= 0: always BUY
    response = wait_for_version(stub, "m1")
    p = response.prediction
    assert p.symbol == "BTCUSDT" and p.interval == "1h" and p.advice == pb.ADVICE_BUY
    assert p.feature_open_time.ToDatetime(tzinfo=UTC) == FIRST_OPEN + timedelta(hours=47)
    assert p.stale  # features from 2024: older than two intervals, flagged
    assert p.feature_age.ToTimedelta() > timedelta(days=300)

    # the served numbers are the champion's own predict() on the same feature row
    champion = registry.load_champion(owner_url)
    assert champion is not None
    row = latest_features(owner_url, "BTCUSDT")
    assert row["open_time"].to_list() == [FIRST_OPEN + timedelta(hours=47)]
    assert row["log_return_1"][0] == pytest.approx(math.log(1047.12345678 / 1046.12345678))
    expected = champion.predict(row.with_columns(pl.col(NUMERIC_FEATURES).cast(pl.Float64)))
    assert p.p_up == pytest.approx(expected["p_up"][0], abs=1e-12)
    assert p.expected_log_return == pytest.approx(expected["expected_log_return"][0], abs=1e-12)

    fresh = stub.GetPrediction(pb.GetPredictionRequest(symbol="SOLUSDT", interval="1h"), timeout=5)
    assert not fresh.prediction.stale

    advice = stub.GetAdvice(pb.GetAdviceRequest(interval="1h"), timeout=5)
    ranked = [a.expected_log_return for a in advice.ranked]
    assert ranked == sorted(ranked, reverse=True) and len(ranked) == 3
    assert advice.best_buy.symbol == advice.ranked[0].symbol
    assert not advice.HasField("worst_sell") and advice.model_version == "m1"

    register(owner_url, "m2", buy=1.0, sell=1.0, quality=0.02)  # P(up) <= 1: always SELL
    p2 = wait_for_version(stub, "m2").prediction
    assert p2.advice == pb.ADVICE_SELL and p2.buy_threshold == 1.0
    advice = stub.GetAdvice(
        pb.GetAdviceRequest(symbols=["BTCUSDT", "ETHUSDT"], interval="1h"), timeout=5
    )
    assert [a.symbol for a in advice.ranked] == sorted(
        ["BTCUSDT", "ETHUSDT"],
        key=lambda s: -next(a.expected_log_return for a in advice.ranked if a.symbol == s),
    )
    assert advice.worst_sell.symbol == advice.ranked[-1].symbol
    assert not advice.HasField("best_buy")

    with pytest.raises(grpc.RpcError) as info:
        stub.GetPrediction(pb.GetPredictionRequest(symbol="XRPUSDT", interval="1h"), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("symbol:")
    with pytest.raises(grpc.RpcError) as info:
        stub.GetPrediction(pb.GetPredictionRequest(symbol="BTCUSDT", interval="2x"), timeout=5)
    assert info.value.details().startswith("interval:")


def test_stream_predictions_sends_one_when_a_bar_closes(
    predicting: tuple[str, ServerThread],
) -> None:
    owner_url, server = predicting
    stub = stub_of(server)
    register(owner_url, "m1", buy=0.0, sell=0.0, quality=0.01)
    wait_for_version(stub, "m1")
    call = stub.StreamPredictions(
        pb.StreamPredictionsRequest(symbols=["ETHUSDT"], interval="1h"), timeout=30
    )
    first = next(call).prediction
    assert first.symbol == "ETHUSDT"
    new_bar = FIRST_OPEN + timedelta(hours=48)
    # raw only: the features are a view over raw, the prediction needs no dbt run
    land_candles(owner_url, candles("ETHUSDT", new_bar, 1, base="2048"), transform=False)
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_notify('klinehouse_candles', %s)",
            ['{"market": "spot", "symbol": "ETHUSDT", "interval": "1h", "open_time": "x"}'],
        )
    second = next(call).prediction
    call.cancel()
    assert second.feature_open_time.ToDatetime(tzinfo=UTC) == new_bar
    assert second.model_version == "m1"


def test_concurrent_predictions_share_reads_yet_see_every_commit_at_once(
    predicting: tuple[str, ServerThread],
) -> None:
    """Calls in flight share one read of the features (inference.coalesce), and a call
    made after a commit is answered from a read that saw it, whichever writer committed
    (here the loader: no NOTIFY) and while other calls keep reads in flight."""
    owner_url, server = predicting
    stub = stub_of(server)
    register(owner_url, "m1", buy=0.0, sell=0.0, quality=0.01)
    wait_for_version(stub, "m1")
    assert server.service is not None
    reads = server.service.predictions.feature_reads
    eth = pb.GetPredictionRequest(symbol="ETHUSDT", interval="1h")

    before = reads.reads
    answers = [f.result() for f in [stub.GetPrediction.future(eth, timeout=10) for _ in range(32)]]
    served = {(a.prediction.p_up, a.prediction.feature_open_time.ToMicroseconds()) for a in answers}
    assert len(served) == 1  # the same bar's prediction to every call (ages differ)
    assert reads.reads - before < 32  # shared: one read per call would make 32
    old = answers[0].prediction

    stop = threading.Event()

    def keep_calling() -> None:  # reads in flight while the bars change
        while not stop.is_set():
            stub.GetPrediction(eth, timeout=10)

    background = [threading.Thread(target=keep_calling) for _ in range(4)]
    for thread in background:
        thread.start()
    try:
        newest = FIRST_OPEN + timedelta(hours=47)
        # the newest bar revised (close 4000.12 instead of 2047.12): its features change
        land_candles(owner_url, candles("ETHUSDT", newest, 1, base="4000"), transform=False)
        revised = stub.GetPrediction(eth, timeout=10).prediction
        assert revised.feature_open_time.ToDatetime(tzinfo=UTC) == newest
        assert (revised.p_up, revised.expected_log_return) != (old.p_up, old.expected_log_return)

        new_bar = newest + timedelta(hours=1)
        land_candles(owner_url, candles("ETHUSDT", new_bar, 1, base="4001"), transform=False)
        newer = stub.GetPrediction(eth, timeout=10).prediction
        assert newer.feature_open_time.ToDatetime(tzinfo=UTC) == new_bar
    finally:
        stop.set()
        for thread in background:
            thread.join(10)


def test_demo_step_prints_advice_and_prediction_over_grpc(
    predicting: tuple[str, ServerThread],
    stack: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from app.demo.inference import step
    from klinehouse.settings import get_settings

    owner_url, _ = predicting
    register(owner_url, "m1", buy=0.0, sell=0.0, quality=0.01)
    reader = stack.reader_url().rsplit("/", 1)[0] + "/" + owner_url.rsplit("/", 1)[1]
    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", owner_url)
    monkeypatch.setenv("KLINEHOUSE_READER_DATABASE_URL", reader)
    get_settings(fresh=True)
    try:
        step()
    finally:
        monkeypatch.undo()
        get_settings(fresh=True)
    out = capsys.readouterr().out
    assert "advice: best buy" in out and "model m1" in out
    assert "prediction: " in out and "BUY" in out
