"""The one masking helper: credentials of URLs, DSNs and known secrets in free text."""

from __future__ import annotations

import logging

import pytest

from klinehouse import redact
from klinehouse.settings import Settings

MASKED = [
    (
        'missing "=" after "postgresql+psycopg://u:SECRET@127.0.0.1:5432/k" in connection info',
        'missing "=" after "postgresql+psycopg://u:***@127.0.0.1:5432/k" in connection info',
    ),
    ("postgresql://u:p@SECRET@db:5432/k", "postgresql://u:***@db:5432/k"),
    (
        "Could not connect to http://AKIA:SECRET@127.0.0.1:1/b/k",
        "Could not connect to http://AKIA:***@127.0.0.1:1/b/k",
    ),
    ("host=db user=u password=SECRET dbname=k", "host=db user=u password=*** dbname=k"),
    ("host=db password='SE CRET' dbname=k", "host=db password='***' dbname=k"),
    (
        "postgresql://db/k?user=u&password=SECRET&sslmode=require",
        "postgresql://db/k?user=u&password=***&sslmode=require",
    ),
    ('{"aws_secret_access_key": "SECRET"}', '{"aws_secret_access_key": "***"}'),
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_credentials_in_text_are_masked(text: str, expected: str) -> None:
    assert redact.mask(text) == expected


def test_what_is_not_a_credential_stays() -> None:
    text = 'FATAL: password authentication failed for user "u" at postgresql://u@db:5432/k'
    assert redact.mask(text) == text


def test_known_secrets_are_masked_wherever_they_appear() -> None:
    assert redact.mask("token was SECRET-TOKEN here", ["SECRET-TOKEN", None, "ab"]) == (
        "token was *** here"
    )


def test_settings_name_their_secrets() -> None:
    settings = Settings(
        database_url="postgresql://u:pa%40ss@db/k",
        reader_database_url="postgresql://r:READERPW@db/k",
        s3_secret_access_key="S3SECRETKEY",  # type: ignore[arg-type]
        grpc_token="GRPCTOKEN",  # type: ignore[arg-type]
    )
    assert {"pa%40ss", "pa@ss", "READERPW", "S3SECRETKEY", "GRPCTOKEN"} <= set(
        redact.settings_secrets(settings)
    )


def test_log_records_and_their_tracebacks_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    redact.install_logging(["VERBATIM-SECRET"])
    log = logging.getLogger("tests.redact")
    with caplog.at_level(logging.INFO):
        log.warning("connecting to %s", "postgresql://u:SECRET@db/k")
        try:
            raise ValueError("bad dsn host=db password=SECRET and VERBATIM-SECRET")
        except ValueError:
            log.exception("failed")
    assert "postgresql://u:***@db/k" in caplog.text
    assert "password=***" in caplog.text and "ValueError" in caplog.text
    assert "SECRET" not in caplog.text.replace("VERBATIM-SECRET", "")
    assert "VERBATIM-SECRET" not in caplog.text
