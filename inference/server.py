"""The klinehouse gRPC server: grpc.aio, health, reflection, bearer auth, TLS, graceful stop.

`Service` wires the pool, the NOTIFY listener and the champion holder to the
servicers; `serve()` runs it until SIGTERM/SIGINT (health turns NOT_SERVING, open
calls get `grace` seconds to finish); `ServerThread` runs one in a background
thread for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from inference.auth import BearerTokenInterceptor
from inference.champion import ChampionHolder, Loader, registry_loader
from inference.listener import NotifyListener
from inference.servicers import CandleServicer, PredictionServicer
from inference.store import Store
from inference.stream_reads import StreamReads, concurrency_for
from klinehouse import db, redact
from klinehouse.settings import Settings, get_settings
from klinehouse.v1 import (
    candle_service_pb2,
    candle_service_pb2_grpc,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
)

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    candle_service_pb2.DESCRIPTOR.services_by_name["CandleService"].full_name,
    prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"].full_name,
)
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # a page of 5,000 candles is ~1 MB
SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 1024 * 1024),  # requests are small
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_connection_idle_ms", 30 * 60_000),
]


@dataclass
class ServerConfig:
    address: str
    database_url: str
    token: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    champion_poll_seconds: float = 2.0
    grace_seconds: float = 10.0
    # replays and history streams hold a connection while they run; unary calls borrow one
    pool_max_size: int = 16
    # calls queued for a connection beyond which unary calls get RESOURCE_EXHAUSTED
    pool_max_waiting: int = 1024
    loader: Loader = field(default=registry_loader)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> ServerConfig:
        s = settings or get_settings()
        config = cls(
            address=s.grpc_address,
            database_url=s.reader_url(),
            token=s.grpc_token.get_secret_value() if s.grpc_token else None,
            tls_cert=s.grpc_tls_cert,
            tls_key=s.grpc_tls_key,
        )
        for key, value in overrides.items():
            setattr(config, key, value)
        return config


class Service:
    def __init__(self, config: ServerConfig) -> None:
        if bool(config.tls_cert) != bool(config.tls_key):
            raise ValueError("TLS needs both KLINEHOUSE_GRPC_TLS_CERT and KLINEHOUSE_GRPC_TLS_KEY")
        # the pool, the listener and the champion log connection failures: never the password
        redact.install_logging((*redact.url_secrets(config.database_url), config.token))
        db.check_url(config.database_url)
        self.config = config
        self.store = Store(
            config.database_url,
            max_size=config.pool_max_size,
            max_waiting=config.pool_max_waiting,
        )
        self.champion = ChampionHolder(
            self.store,
            config.database_url,
            loader=config.loader,
            poll_seconds=config.champion_poll_seconds,
        )
        self.health = health.aio.HealthServicer()
        self.listener = NotifyListener(
            config.database_url,
            on_models=self.champion.poke_async,
            on_connection=self._database_state,
        )
        reads = StreamReads(concurrency_for(config.pool_max_size))  # both servicers' streams
        interceptors = [BearerTokenInterceptor(config.token)] if config.token else []
        self.server = grpc.aio.server(interceptors=interceptors, options=SERVER_OPTIONS)
        candle_service_pb2_grpc.add_CandleServiceServicer_to_server(
            CandleServicer(self.store, self.listener, reads), self.server
        )
        self.predictions = PredictionServicer(self.store, self.champion, self.listener, reads)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            self.predictions, self.server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = self._bind(config)

    def _bind(self, config: ServerConfig) -> int:
        if config.tls_cert and config.tls_key:
            creds = grpc.ssl_server_credentials(
                [(Path(config.tls_key).read_bytes(), Path(config.tls_cert).read_bytes())]
            )
            port = self.server.add_secure_port(config.address, creds)
        else:
            port = self.server.add_insecure_port(config.address)
        if port == 0:
            raise OSError(f"cannot listen on {config.address}")
        return port

    async def start(self) -> None:
        await self.store.open()
        try:  # serve with the champion already loaded when the registry is reachable
            await asyncio.wait_for(self.champion.refresh(), timeout=60)
        except Exception as exc:  # the reload loop keeps trying; RPCs say FAILED_PRECONDITION
            log.warning("champion not loaded at start (%s); retrying in the background", exc)
        for name in SERVICE_NAMES:  # until the LISTEN connection reports the database up
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.listener.start()
        self.champion.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listener.connected.wait(), timeout=10)
        await self.server.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "klinehouse gRPC on port %d (%s, %s)",
            self.port,
            "TLS" if self.config.tls_cert else "plaintext",
            "bearer token required" if self.config.token else "no auth",
        )

    async def _database_state(self, up: bool) -> None:
        """The services are NOT_SERVING while the database is unreachable; the server
        itself ("") stays SERVING, so that a liveness probe does not restart it for that."""
        self.store.available = up  # reads fail fast while the database is away
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if up
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in SERVICE_NAMES:
            await self.health.set(name, status)
        if not up:
            log.warning("database unreachable: services NOT_SERVING until it is back")

    async def stop(self, grace: float | None = None) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.config.grace_seconds if grace is None else grace)
        await self.listener.stop()
        await self.champion.stop()
        await self.store.close()


async def serve(config: ServerConfig) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully."""
    service = Service(config)
    await service.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("stopping: open calls have %.0fs to finish", config.grace_seconds)
    await service.stop()


class ServerThread:
    """A Service on its own event loop in a background thread (tests, benchmarks)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.service: Service | None = None

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self.service = self.call(self._make())
        return self

    async def _make(self) -> Service:
        service = Service(self.config)
        await service.start()
        return service

    @property
    def port(self) -> int:
        assert self.service is not None
        return self.service.port

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __exit__(self, *exc: object) -> None:
        if self.service is not None:
            with contextlib.suppress(Exception):
                self.call(self.service.stop(grace=1.0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
