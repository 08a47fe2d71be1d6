"""Secrets never reach a log line: masked keys and token lookalikes, plain tracebacks
without local variables, the same for structlog events and stdlib records."""

from __future__ import annotations

import io
import logging
import os
import secrets
from collections.abc import Iterator

import pytest
import structlog

from pier.observability.logging import (
    REDACTED,
    SafeStream,
    configure_logging,
    is_sensitive_key,
    redact,
)

TOKEN = secrets.token_urlsafe(32)
SECRET_VALUE = "pw-that-must-not-leak-7f3a"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """pier's logging set-up writing to a buffer; the previous set-up restored after."""
    saved_config = structlog.get_config()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("pier").level)
    buffer = io.StringIO()
    configure_logging(buffer)
    yield buffer
    structlog.configure(**saved_config)
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.getLogger("pier").setLevel(saved[2])
    logging.raiseExceptions = True


@pytest.mark.parametrize(
    "key",
    ["authorization", "Authorization", "X-Api-Key", "api_key", "token", "admin_token",
     "password", "registry_password", "secret", "secret_env", "Cookie", "set-cookie",
     "credentials"],
)  # fmt: skip
def test_sensitive_keys_are_masked_in_any_case(key: str) -> None:
    assert is_sensitive_key(key)
    assert redact({key: "value"}) == {key: REDACTED}


@pytest.mark.parametrize("key", ["node", "instance", "token_path", "secret_name", "reason"])
def test_other_keys_are_kept(key: str) -> None:
    assert redact({key: "value"}) == {key: "value"}


def test_nested_values_are_masked() -> None:
    event = {"request": {"headers": [{"authorization": "Basic abc"}], "path": "/x"}}
    assert redact(event) == {"request": {"headers": [{"authorization": REDACTED}], "path": "/x"}}


def test_token_lookalikes_and_bearer_credentials_are_masked_in_text() -> None:
    text = f"auth failed for {TOKEN} with header 'Bearer abc.def' and Basic dXNlcjpwdw=="
    masked = redact(text)
    assert TOKEN not in masked and "abc.def" not in masked and "dXNlcjpwdw" not in masked
    assert "auth failed for" in masked and "Bearer ***" in masked


def _fail_with_secrets_in_locals(authorization: str) -> None:
    body = {"value": {"password": SECRET_VALUE}}
    raise ValueError(f"could not store {len(body)} secret(s)")


def test_structlog_exception_has_no_locals_and_no_secrets(log_output: io.StringIO) -> None:
    log = structlog.get_logger("pier.test")
    try:
        _fail_with_secrets_in_locals(f"Bearer {TOKEN}")
    except ValueError:
        log.exception("request failed", headers={"Authorization": f"Bearer {TOKEN}"}, token=TOKEN)
    text = log_output.getvalue()
    assert "request failed" in text and "ValueError: could not store 1 secret(s)" in text
    assert "_fail_with_secrets_in_locals" in text  # the traceback is there...
    assert SECRET_VALUE not in text and TOKEN not in text  # ...its frames' locals are not


def test_stdlib_records_go_through_the_same_redaction(log_output: io.StringIO) -> None:
    try:
        _fail_with_secrets_in_locals(f"Bearer {TOKEN}")
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application %s", TOKEN)
    logging.getLogger("sqlalchemy.engine").info("below the level of other libraries")
    text = log_output.getvalue()
    assert "Exception in ASGI application" in text and "[uvicorn.error]" in text
    assert SECRET_VALUE not in text and TOKEN not in text
    assert "below the level" not in text


def test_writing_to_a_closed_pipe_neither_raises_nor_stops_the_writer() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as file:
        stream = SafeStream(file)
        os.close(read_end)
        stream.line("nobody reads this")
        stream.line("nor this")
        stream.flush()
        assert stream.is_broken
        file.write("the descriptor now leads nowhere: anyone may write to it\n")
