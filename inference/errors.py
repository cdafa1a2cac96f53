"""The service's expected failures, each carrying the gRPC status it maps to.

Typed functions raise `ServiceError`; the servicers turn it (and database
failures) into a status with a message naming what was wrong, so that no RPC
ends in UNKNOWN.
"""

from __future__ import annotations

import grpc


class ServiceError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(field: str, message: str) -> ServiceError:
    """INVALID_ARGUMENT whose message starts with the offending field."""
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {message}")


def out_of_range(field: str, message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.OUT_OF_RANGE, f"{field}: {message}")


def not_found(message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.NOT_FOUND, message)


def precondition(message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.FAILED_PRECONDITION, message)


def unavailable(message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.UNAVAILABLE, message)
