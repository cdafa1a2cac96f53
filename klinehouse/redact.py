"""Credentials masked out of everything klinehouse shows: errors, log lines, tracebacks.

One helper, `mask()`, for URLs, DSNs and free text quoting them (a psycopg error
repeats the whole connection string it rejected). `install_logging()` applies it
to every log record of the process, whichever handler prints it.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from klinehouse.settings import Settings

MASK = "***"

# scheme://user:password@  (the password may itself hold '@': the last '@' of the word ends it)
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s'\"]*):(?P<secret>[^\s'\"]+)@"
)
# password=... in a libpq DSN, a query string, JSON or YAML; quoted values may hold spaces
_KEYWORDS = (
    "password|passwd|pwd|sslpassword|secret|secret_key|secret_access_key|"
    "aws_secret_access_key|token|access_token|api_key|apikey"
)
_KEYWORD_VALUE = re.compile(
    rf"(?P<head>\b(?:{_KEYWORDS})['\"]?\s*[=:]\s*)"
    r"(?:(?P<q>['\"])(?P<quoted>.*?)(?P=q)|(?P<bare>[^\s&'\",;)}]+))",
    re.IGNORECASE,
)
_MIN_SECRET = 4  # shorter "secrets" would mask ordinary words


def _keyword(match: re.Match[str]) -> str:
    quote = match.group("q") or ""
    return f"{match.group('head')}{quote}{MASK}{quote}"


def mask(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with the credentials of any URL or DSN in it, and each of `secrets`, as ***."""
    masked = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    masked = _KEYWORD_VALUE.sub(_keyword, masked)
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len)[::-1]:
        masked = masked.replace(secret, MASK)
    return masked


def url_secrets(url: str) -> tuple[str, ...]:
    """The password of a URL, as written and percent-decoded (nothing for an unparsable one)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return ()
    return (password, unquote(password)) if password else ()


def settings_secrets(settings: Settings) -> tuple[str, ...]:
    """The passwords, keys and tokens in `settings`: `mask` replaces them verbatim anywhere."""
    values: list[str] = []
    for url in (
        settings.database_url,
        settings.reader_database_url,
        settings.loader_database_url,
    ):
        values += url_secrets(url)
    for secret in (settings.s3_secret_access_key, settings.grpc_token):
        if secret is not None:
            values.append(secret.get_secret_value())
    return tuple(v for v in values if v)


def exception_text(exc: BaseException) -> str:
    """One masked line for an exception: its type when it has no message."""
    lines = str(exc).strip().splitlines()
    return mask(" ".join(line.strip() for line in lines) if lines else type(exc).__name__)


def traceback_text(exc: BaseException) -> str:
    return mask("".join(traceback.format_exception(exc)))


_installed = False


_secrets: set[str] = set()


def install_logging(secrets: Iterable[str | None] = ()) -> None:
    """Mask every log record created from now on in this process, and each of `secrets`.

    A record factory rather than a handler filter: it covers handlers added later
    (Airflow's task log, pytest's caplog) and the traceback of `log.exception`.
    Calling it again only adds secrets.
    """
    global _installed
    _secrets.update(s for s in secrets if s)
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: leave it to logging's own error report
            return record
        record.msg, record.args = mask(message, _secrets), None
        if record.exc_info and record.exc_info[1] is not None:
            # formatters print a record's exc_text when it is set, instead of formatting anew
            text = "".join(traceback.format_exception(record.exc_info[1]))
            record.exc_text = mask(text, _secrets).rstrip("\n")
        if record.stack_info:
            record.stack_info = mask(record.stack_info, _secrets)
        return record

    logging.setLogRecordFactory(masked_record)
