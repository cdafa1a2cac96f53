"""Streaming via NOTIFY, auth, TLS, health, reflection, outage and recovery — all on real ports."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from inference.server import ServerThread
from klinehouse.settings import Settings
from klinehouse.v1 import candle_service_pb2, candle_service_pb2_grpc

from .conftest import BARS, FIRST_OPEN, TOKEN, candles, land_candles
from .proxy import TcpProxy
from .test_candles import ts

DAY = candle_service_pb2.GetCandlesRequest(symbol="BTCUSDT", interval="1h", date="2024-03-01")


def test_a_candle_landing_with_its_notify_arrives_on_the_stream(
    channel: grpc.Channel, warehouse: tuple[str, str]
) -> None:
    stub = candle_service_pb2_grpc.CandleServiceStub(channel)
    replay_from = FIRST_OPEN + timedelta(hours=BARS - 3)
    call = stub.StreamCandles(
        candle_service_pb2.StreamCandlesRequest(
            symbols=["ETHUSDT"], interval="1h", replay_start_time=ts(replay_from)
        ),
        timeout=30,
    )
    replayed = next(call)
    assert [c.open_time.ToDatetime(tzinfo=UTC) for c in replayed.candles] == [
        replay_from + timedelta(hours=h) for h in range(3)
    ]
    new_open = FIRST_OPEN + timedelta(hours=BARS)
    land_candles(warehouse[0], candles("ETHUSDT", new_open, 1, base="3000"))
    with psycopg.connect(warehouse[0], autocommit=True) as conn:
        payload = {"market": "spot", "symbol": "ETHUSDT", "interval": "1h"}
        payload["open_time"] = new_open.isoformat()
        conn.execute("SELECT pg_notify('klinehouse_candles', %s)", [json.dumps(payload)])
    live = next(call)
    call.cancel()
    assert [(c.symbol, c.open_time.ToDatetime(tzinfo=UTC)) for c in live.candles] == [
        ("ETHUSDT", new_open)
    ]


def test_stream_of_an_unknown_symbol_is_invalid(channel: grpc.Channel) -> None:
    stub = candle_service_pb2_grpc.CandleServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        next(
            stub.StreamCandles(
                candle_service_pb2.StreamCandlesRequest(symbols=["NOPEUSDT"], interval="1h"),
                timeout=10,
            )
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("symbols:")


def test_health_and_reflection(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "klinehouse.v1.CandleService", "klinehouse.v1.PredictionService"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = list(
        reflect.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
    )
    names = {s.name for s in responses[0].list_services_response.service}
    assert {"klinehouse.v1.CandleService", "klinehouse.v1.PredictionService"} <= names


def test_bearer_token_is_required_on_every_rpc_but_health(
    warehouse: tuple[str, str], server_factory: Callable[..., ServerThread]
) -> None:
    server = server_factory(warehouse[1], token=TOKEN)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        stub = candle_service_pb2_grpc.CandleServiceStub(ch)
        for metadata in (None, [("authorization", "Bearer wrong")], [("authorization", TOKEN)]):
            with pytest.raises(grpc.RpcError) as info:
                stub.GetCandles(DAY, timeout=5, metadata=metadata)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as info:
            next(
                stub.StreamCandleHistory(
                    candle_service_pb2.StreamCandleHistoryRequest(
                        symbol="BTCUSDT", interval="1h", date="2024-03-01"
                    ),
                    timeout=5,
                )
            )
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        good = [("authorization", f"Bearer {TOKEN}")]
        assert len(stub.GetCandles(DAY, timeout=5, metadata=good).candles) == 24
        health = health_pb2_grpc.HealthStub(ch)
        assert (
            health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            == health_pb2.HealthCheckResponse.SERVING
        )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not found")
def test_tls_when_certificate_and_key_are_set(
    warehouse: tuple[str, str], server_factory: Callable[..., ServerThread], tmp_path: Path
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    server = server_factory(warehouse[1], tls_cert=str(cert), tls_key=str(key))
    creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    with grpc.secure_channel(f"localhost:{server.port}", creds) as ch:
        stub = candle_service_pb2_grpc.CandleServiceStub(ch)
        assert len(stub.GetCandles(DAY, timeout=10).candles) == 24
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:  # plaintext is refused
        with pytest.raises(grpc.RpcError) as info:
            candle_service_pb2_grpc.CandleServiceStub(ch).GetCandles(DAY, timeout=3)
        assert info.value.code() in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


def service_status(
    health: health_pb2_grpc.HealthStub, name: str = "klinehouse.v1.CandleService"
) -> int:
    request = health_pb2.HealthCheckRequest(service=name)
    return int(health.Check(request, timeout=5).status)


def wait_status(health: health_pb2_grpc.HealthStub, status: int) -> None:
    deadline = time.monotonic() + 20
    while service_status(health) != status:
        assert time.monotonic() < deadline, f"health never became {status}"
        time.sleep(0.2)


def test_database_outage_is_unavailable_and_the_server_recovers(
    warehouse: tuple[str, str], server_factory: Callable[..., ServerThread]
) -> None:
    parts = urlsplit(warehouse[1])
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    proxy.start()
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
    server = server_factory(urlunsplit(parts._replace(netloc=netloc)))
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        stub = candle_service_pb2_grpc.CandleServiceStub(ch)
        assert len(stub.GetCandles(DAY, timeout=10).candles) == 24
        health = health_pb2_grpc.HealthStub(ch)
        assert service_status(health) == health_pb2.HealthCheckResponse.SERVING
        proxy.stop()
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            stub.GetCandles(DAY, timeout=20)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value.details()
        assert "database" in info.value.details()
        assert time.monotonic() - started < 5  # fails fast, not at the client's deadline
        wait_status(health, health_pb2.HealthCheckResponse.NOT_SERVING)
        started = time.monotonic()  # known down (NOT_SERVING): at once
        with pytest.raises(grpc.RpcError) as info:
            stub.GetCandles(DAY, timeout=20)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value.details()
        assert time.monotonic() - started < 2
        assert service_status(health, "") == health_pb2.HealthCheckResponse.SERVING  # liveness
        proxy.start()
        wait_status(health, health_pb2.HealthCheckResponse.SERVING)
        deadline = time.monotonic() + 30
        while True:
            try:
                assert len(stub.GetCandles(DAY, timeout=5).candles) == 24
                break
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc.details()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    proxy.stop()


def test_missing_serving_tables_are_a_failed_precondition(
    database_url: str, stack: Settings, server_factory: Callable[..., ServerThread]
) -> None:
    """Serving reads migration-owned relations only (marts need not exist): a database
    whose migrations were not run says how to fix it."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA serving CASCADE")
    reader = stack.reader_url().rsplit("/", 1)[0] + "/" + database_url.rsplit("/", 1)[1]
    server = server_factory(reader)
    with (
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch,
        pytest.raises(grpc.RpcError) as info,
    ):
        candle_service_pb2_grpc.CandleServiceStub(ch).GetCandles(DAY, timeout=10)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "klinehouse db upgrade" in info.value.details()


def test_an_unexpected_failure_is_internal_never_unknown(
    database_url: str, stack: Settings, server_factory: Callable[..., ServerThread]
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:  # a view of the wrong shape
        conn.execute("DROP VIEW serving.klines")
        conn.execute(
            "CREATE VIEW serving.klines AS SELECT 'spot'::text AS market, 'BTCUSDT'::text AS symbol,"
            " '1h'::text AS interval, now() AS open_time, 'yesterday'::text AS close_time"
        )
        conn.execute("GRANT SELECT ON serving.klines TO klinehouse_reader")
    reader = stack.reader_url().rsplit("/", 1)[0] + "/" + database_url.rsplit("/", 1)[1]
    server = server_factory(reader)
    with (
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch,
        pytest.raises(grpc.RpcError) as info,
    ):
        candle_service_pb2_grpc.CandleServiceStub(ch).GetCandles(DAY, timeout=10)
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert info.value.details().startswith("internal error in GetCandles")


def test_a_stream_past_its_deadline_ends_and_leaves_no_subscription(server: ServerThread) -> None:
    assert server.service is not None
    listener = server.service.listener
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        call = candle_service_pb2_grpc.CandleServiceStub(ch).StreamCandles(
            candle_service_pb2.StreamCandlesRequest(symbols=["BTCUSDT"], interval="1h"),
            timeout=1.0,
        )
        with pytest.raises(grpc.RpcError) as info:
            next(call)  # nothing new lands: the deadline ends the call
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    deadline = time.monotonic() + 10
    while listener._subs:  # the handler's cleanup runs as the server cancels it
        assert time.monotonic() < deadline, "the stream's subscription was left behind"
        time.sleep(0.1)
