"""A champion per (market, interval): two intervals each have one in the real registry,
the service on a real port serves each request with its interval's champion, and a
promotion reloads only its own pair."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any

import grpc
import polars as pl
import psycopg
import pytest

from inference.server import ServerThread
from klinehouse.settings import Settings
from klinehouse.v1 import prediction_service_pb2 as pb
from training import registry

from ..marts import drop_database, klines
from .conftest import FIRST_OPEN, MARTS, D, build_template, candles, serve_clone
from .test_predictions import register, stub_of


def four_hourly(symbol: str, bars: int) -> pl.DataFrame:
    times = pl.datetime_range(
        FIRST_OPEN,
        FIRST_OPEN + timedelta(hours=4 * (bars - 1)),
        interval="4h",
        eager=True,
        time_zone="UTC",
    )
    price = pl.lit(Decimal("500.0")).cast(D) + pl.col("i").cast(D)
    return klines(
        symbol,
        times,
        open=price,
        high=price + pl.lit(Decimal("2")),
        low=price - pl.lit(Decimal("1")),
        close=price + pl.lit(Decimal("0.5")),
        volume=10 + pl.col("i"),
        trades=100 + pl.col("i"),
        taker_buy_base_volume=pl.lit(Decimal("5.5")),
        interval="4h",
    )


@pytest.fixture(scope="module")
def pairs_template(stack: Settings) -> Iterator[str]:
    """Marts of BTC and ETH at 1h and BTC at 4h, built by dbt once."""
    frames = [candles(s, FIRST_OPEN, 48, base="1000") for s in ("BTCUSDT", "ETHUSDT")]
    frames.append(four_hourly("BTCUSDT", 48))
    name = build_template(stack, frames, MARTS, prefix="pairs_")
    yield name
    drop_database(stack, name)


@pytest.fixture
def served(
    pairs_template: str,
    stack: Settings,
    lake_settings: Settings,
    server_factory: Callable[..., ServerThread],
) -> Iterator[tuple[str, ServerThread]]:
    with serve_clone(stack, pairs_template, "pairs_t_", server_factory) as served:
        yield served


def predict(stub: Any, interval: str) -> pb.Prediction:
    request = pb.GetPredictionRequest(symbol="BTCUSDT", interval=interval)
    return stub.GetPrediction(request, timeout=5).prediction


def wait_for(stub: Any, interval: str, version: str) -> pb.Prediction:
    deadline = time.monotonic() + 20
    while True:
        try:
            p = predict(stub, interval)
            if p.model_version == version:
                return p
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION, exc.details()
        assert time.monotonic() < deadline, f"{interval} model {version} not picked up"
        time.sleep(0.2)


def statuses(owner_url: str) -> dict[str, tuple[str, str]]:
    with psycopg.connect(owner_url) as conn:
        rows = conn.execute("SELECT version, interval, status FROM ml.model_registry").fetchall()
    return {v: (i, s) for v, i, s in rows}


def test_two_intervals_each_have_a_champion_and_both_are_served(
    served: tuple[str, ServerThread],
) -> None:
    owner_url, server = served
    stub = stub_of(server)
    register(owner_url, "h1", buy=0.0, sell=0.0, quality=0.01)  # always BUY
    p1 = wait_for(stub, "1h", "h1")
    # no 4h champion yet: the 1h one does not answer for 4h
    with pytest.raises(grpc.RpcError) as info:
        predict(stub, "4h")
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no champion model for spot 4h" in info.value.details()

    # a weaker 4h model still becomes 4h's champion: it is judged against its own pair
    register(owner_url, "h4", buy=1.0, sell=1.0, quality=0.005, interval="4h")  # always SELL
    assert statuses(owner_url) == {"h1": ("1h", "champion"), "h4": ("4h", "champion")}
    assert registry.champions(owner_url) == {("spot", "1h"): "h1", ("spot", "4h"): "h4"}
    p4 = wait_for(stub, "4h", "h4")
    assert (p1.advice, p4.advice) == (pb.ADVICE_BUY, pb.ADVICE_SELL)
    assert p4.interval == "4h"
    assert p4.feature_open_time.ToDatetime(tzinfo=UTC) == FIRST_OPEN + timedelta(hours=4 * 47)
    assert predict(stub, "1h").model_version == "h1"
    advice = stub.GetAdvice(pb.GetAdviceRequest(interval="4h"), timeout=5)
    assert advice.model_version == "h4" and [a.symbol for a in advice.ranked] == ["BTCUSDT"]
    assert stub.GetAdvice(pb.GetAdviceRequest(interval="1h"), timeout=5).model_version == "h1"
    call = stub.StreamPredictions(
        pb.StreamPredictionsRequest(symbols=["BTCUSDT"], interval="4h"), timeout=10
    )
    first = next(call).prediction
    call.cancel()
    assert (first.model_version, first.interval) == ("h4", "4h")

    # each pair's numbers are that pair's champion's own predict()
    for interval, version in (("1h", "h1"), ("4h", "h4")):
        champion = registry.load_champion(owner_url, interval=interval)
        assert champion is not None and champion.version == version


def test_a_promotion_reloads_only_its_pair(served: tuple[str, ServerThread]) -> None:
    owner_url, server = served
    stub = stub_of(server)
    register(owner_url, "h1", buy=0.0, sell=0.0, quality=0.01)
    register(owner_url, "h4", buy=0.0, sell=0.0, quality=0.01, interval="4h")
    wait_for(stub, "1h", "h1")
    wait_for(stub, "4h", "h4")
    assert server.service is not None
    holder = server.service.champion
    one_hour = holder.get("spot", "1h")
    loads = holder.loads

    with psycopg.connect(owner_url, autocommit=True) as listen:
        listen.execute("LISTEN klinehouse_models")
        register(owner_url, "h4b", buy=1.0, sell=1.0, quality=0.02, interval="4h")
        note = next(listen.notifies(timeout=10))
    assert json.loads(note.payload) == {"market": "spot", "interval": "4h", "version": "h4b"}
    assert wait_for(stub, "4h", "h4b").advice == pb.ADVICE_SELL
    time.sleep(0.5)  # a few more polls: none of them may touch the 1h pair
    assert holder.get("spot", "1h") is one_hour and holder.loads == loads + 1
    assert predict(stub, "1h").model_version == "h1"
    assert statuses(owner_url) == {
        "h1": ("1h", "champion"),
        "h4": ("4h", "retired"),
        "h4b": ("4h", "champion"),
    }


def test_the_notification_payload_names_the_pair() -> None:
    change = registry.ChampionChange(market="usdm", interval="4h", version="v9")
    assert registry.ChampionChange.parse(change.model_dump_json()) == change
    assert registry.ChampionChange.parse("") is None
    assert registry.ChampionChange.parse('{"version": "v9"}') is None


def test_models_list_shows_each_pairs_champion(
    served: tuple[str, ServerThread], monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from klinehouse.settings import get_settings
    from training.cli import models

    owner_url, _ = served
    register(owner_url, "h1", buy=0.0, sell=0.0, quality=0.001)
    register(owner_url, "h1b", buy=0.0, sell=0.0, quality=0.01)  # retires h1
    register(
        owner_url, "h4", buy=0.0, sell=0.0, quality=0.001, interval="4h", candidate="catboost_h4"
    )
    monkeypatch.setenv("KLINEHOUSE_DATABASE_URL", owner_url)
    get_settings(fresh=True)
    try:
        listed = CliRunner().invoke(models, ["list"])
        only_4h = CliRunner().invoke(models, ["list", "--interval", "4h"])
        shown = CliRunner().invoke(models, ["show", "--interval", "4h"])
    finally:
        monkeypatch.undo()
        get_settings(fresh=True)
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0] == "spot 1h: champion h1b, predicting target_up 1 bar(s) ahead (catboost_h1)"
    assert [line.split()[:2] for line in lines[1:3]] == [["h1b", "champion"], ["h1", "retired"]]
    h4 = "spot 4h: champion h4, predicting target_up_4 4 bar(s) ahead (catboost_h4)"
    assert lines[3] == h4 and lines[4].split()[:2] == ["h4", "champion"]
    assert "catboost_h4 (target_up_4, 4 bars)" in lines[4]
    assert only_4h.output.splitlines()[0] == h4
    assert len(only_4h.output.splitlines()) == 2
    assert shown.exit_code == 0 and json.loads(shown.output)["version"] == "h4"
