"""DAG tasks fail with their credentials masked.

Airflow logs a failed task's exception and its chain verbatim, through its own
logging, past `klinehouse.redact.install_logging`: `masked` re-raises an
exception whose message quotes a credential (a botocore error naming
`http://key:secret@host`) as `TaskFailed` with the message masked and no chain.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from klinehouse import redact
from klinehouse.errors import KlinehouseError

P = ParamSpec("P")
R = TypeVar("R")


class TaskFailed(KlinehouseError):
    """A task's failure whose message quoted a credential, re-raised with it masked."""


def masked(fn: Callable[P, R]) -> Callable[P, R]:
    """`fn` with its log records masked and its credential-quoting errors re-raised masked."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from klinehouse.settings import get_settings

        secrets = redact.settings_secrets(get_settings())
        redact.install_logging(secrets)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            text = str(exc)
            shown = redact.mask(text, secrets)
            if shown == text:
                raise
            raise TaskFailed(f"{type(exc).__name__}: {shown}") from None

    return wrapper
