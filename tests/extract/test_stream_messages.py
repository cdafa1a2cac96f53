"""Parsing websocket frames and batching closed candles (pure functions, no stack)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from extract.stream.batcher import MicroBatcher
from extract.stream.messages import MalformedMessage, parse_frame, stream_name, to_frame
from klinehouse import klines

SUBSCRIBED = frozenset({"btcusdt@kline_1m"})


@pytest.fixture
def open_event(shared_data: Path) -> dict[str, object]:
    data = json.loads((shared_data / "binance/api/ws_kline_event_open.json").read_text())
    assert isinstance(data, dict)
    return data


def frame(data: dict[str, object], stream: str = "btcusdt@kline_1m") -> str:
    return json.dumps({"stream": stream, "data": data})


def test_real_event_keeps_exact_decimals(open_event: dict[str, object]) -> None:
    event = parse_frame(frame(open_event), SUBSCRIBED)
    assert (event.symbol, event.interval, event.closed) == ("BTCUSDT", "1m", False)
    df = to_frame([event], market="spot")
    assert df.schema == klines.polars_schema()
    row = df.row(0, named=True)
    assert row["close"] == Decimal("66472.20000000")
    assert row["quote_volume"] == Decimal("714783.46215380")
    assert row["trades"] == 246 and row["source"] == "stream"
    assert row["open_time"].isoformat() == "2024-06-17T23:42:00+00:00"
    assert row["close_time"].isoformat() == "2024-06-17T23:42:59.999000+00:00"


@pytest.mark.parametrize(
    ("mutate", "reason", "names"),
    [
        (lambda k: k.__setitem__("c", "1e3"), "malformed", "'c'"),
        (lambda k: k.__setitem__("v", "0.123456789"), "malformed", "'v'"),  # finer than scale 8
        (lambda k: k.__setitem__("c", 66472.2), "malformed", "'c'"),  # a float, not a string
        (lambda k: k.__setitem__("t", "1718667720000"), "malformed", "'t'"),
        (lambda k: k.__setitem__("x", 1), "malformed", "'x'"),
        (lambda k: k.pop("Q"), "malformed", "'Q'"),
        (lambda k: k.__setitem__("s", "ETHUSDT"), "malformed", "ETHUSDT"),
    ],
)
def test_bad_fields_are_named(open_event: dict, mutate, reason: str, names: str) -> None:  # type: ignore[no-untyped-def]
    open_event["k"]["x"] = True  # a closing event: every field of it is stored
    mutate(open_event["k"])
    with pytest.raises(MalformedMessage) as info:
        parse_frame(frame(open_event), SUBSCRIBED)
    assert info.value.reason == reason
    assert names in str(info.value)


def test_frames_that_are_not_subscribed_kline_events(open_event: dict[str, object]) -> None:
    cases = {
        "not json {": "not_json",
        b"\xff\xfe": "not_json",
        '{"result": null, "id": 1}': "unexpected",
        frame(open_event, stream="ethusdt@kline_1m"): "unexpected",
        frame({"e": "trade", "s": "BTCUSDT"}): "unexpected",
    }
    for raw, reason in cases.items():
        with pytest.raises(MalformedMessage) as info:
            parse_frame(raw, SUBSCRIBED)
        assert info.value.reason == reason, raw


def test_stream_names_keep_the_interval_case() -> None:
    assert stream_name("BTCUSDT", "1M") == "btcusdt@kline_1M"
    assert stream_name("BTCUSDT", "1m") == "btcusdt@kline_1m"


def test_batcher_flushes_on_rows_or_age_and_keeps_the_last_close(open_event: dict) -> None:  # type: ignore[type-arg]
    open_event["k"]["x"] = True
    first = parse_frame(frame(open_event), SUBSCRIBED)
    open_event["k"]["c"] = "66480.00000000"
    resent = parse_frame(frame(open_event), SUBSCRIBED)
    open_event["k"]["t"] += 60_000
    later = parse_frame(frame(open_event), SUBSCRIBED)

    batch = MicroBatcher(max_rows=2, max_seconds=5)
    assert batch.seconds_until_due(now=0) is None
    batch.add(first, arrived=100.0)
    assert batch.seconds_until_due(now=101.0) == pytest.approx(4.0)
    assert batch.seconds_until_due(now=106.0) == 0.0
    batch.add(resent, arrived=101.0)
    assert len(batch) == 1  # the same candle once, the later event winning
    batch.add(later, arrived=102.0)
    assert batch.seconds_until_due(now=102.0) == 0.0  # two rows: due at once
    taken = batch.take()
    assert [p.event for p in taken] == [resent, later] and len(batch) == 0

    batch.add(later, arrived=200.0)  # received while the failed write was in flight
    batch.put_back(taken)
    assert [p.event for p in batch.take()] == [resent, later]

    with pytest.raises(ValueError, match="N >= 1"):
        MicroBatcher(max_rows=0, max_seconds=1)
