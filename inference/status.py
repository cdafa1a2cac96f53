"""The gRPC status of every failure of an RPC: `unary` / `stream` wrap the
servicers' methods and map expected failures to a status naming what was wrong:
ServiceError to its own code, a busy pool to RESOURCE_EXHAUSTED, a lost
database to UNAVAILABLE, a statement timeout
to DEADLINE_EXCEEDED, anything else to INTERNAL (logged) — never UNKNOWN.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from inference.errors import ServiceError
from inference.store import DatabaseDown, PoolExhausted

log = logging.getLogger(__name__)
Req = TypeVar("Req")
Resp = TypeVar("Resp")


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    """The status of an expected failure; None for a bug (reported as INTERNAL)."""
    if isinstance(exc, ServiceError):
        return exc.code, exc.message
    if isinstance(exc, pg_errors.QueryCanceled):
        return grpc.StatusCode.DEADLINE_EXCEEDED, "the query ran past the statement timeout"
    if isinstance(exc, PoolExhausted):
        return (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "every database connection of the service stayed busy until the deadline; "
            "retry with backoff or a longer deadline",
        )
    if isinstance(exc, DatabaseDown):
        return grpc.StatusCode.UNAVAILABLE, "the warehouse database is unavailable; retry later"
    if isinstance(exc, pg_errors.UndefinedTable):
        return (
            grpc.StatusCode.FAILED_PRECONDITION,
            f"the warehouse lacks a table the service reads ({exc.diag.message_primary}): "
            "run `klinehouse db upgrade`",
        )
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return (
            grpc.StatusCode.FAILED_PRECONDITION,
            f"the service's database role may not read it: {exc.diag.message_primary}",
        )
    if isinstance(exc, psycopg.OperationalError | PoolTimeout | OSError):
        return grpc.StatusCode.UNAVAILABLE, "the warehouse database is unavailable; retry later"
    if isinstance(exc, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed before the data was read"
    return None


def unary(
    fn: Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]:
    @functools.wraps(fn)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
        try:
            return await fn(self, request, context)
        except Exception as exc:
            await _abort(exc, context, fn.__name__)
            raise  # unreachable: abort raises

    return wrapper


def stream(
    fn: Callable[[Any, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]]:
    @functools.wraps(fn)
    async def wrapper(
        self: Any, request: Req, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Resp]:
        try:
            async for item in fn(self, request, context):
                yield item
        except Exception as exc:
            await _abort(exc, context, fn.__name__)

    return wrapper


async def _abort(exc: Exception, context: grpc.aio.ServicerContext, rpc: str) -> None:
    if isinstance(exc, grpc.aio.AbortError):
        raise exc
    status = status_of(exc)
    if status is None:
        log.exception("%s failed", rpc)
        status = (grpc.StatusCode.INTERNAL, f"internal error in {rpc}: {type(exc).__name__}")
    elif status[0] == grpc.StatusCode.UNAVAILABLE:
        log.warning("%s: database unavailable: %s", rpc, exc)
    await context.abort(*status)


def deadline(context: grpc.aio.ServicerContext, cap: float = 10.0) -> float:
    """Seconds a database read of this call may take: the client's deadline, at most `cap`."""
    remaining = context.time_remaining()
    return cap if remaining is None else max(0.001, min(cap, remaining))
