"""Logging for every pier process (`pier up`, the gateway, the model server): one setup.

structlog events and stdlib records (uvicorn, SQLAlchemy, Alembic) go through the same
``ProcessorFormatter``, so both get the same treatment:

* **Redaction.** Values under sensitive keys (``authorization``, ``token``, ``password``,
  ``secret``, ``cookie``, ``api_key``...; any case, in nested dicts and lists too) become
  ``***``, and so does anything in a string that looks like a bearer token or one of
  pier's tokens, including in tracebacks.
* **Tracebacks without local variables.** Rich and better-exceptions tracebacks print every
  frame's locals, and with them request headers and the secret being written; ours are
  Python's plain ones.
* **Output that never raises.** A closed pipe (``pier up | tee log``, then Ctrl-C) or a
  gone terminal must not abort whatever was logging, least of all a shutdown.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import Any, Final, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED: Final = "***"

SENSITIVE_KEYS: Final = frozenset(
    {"api_key", "apikey", "secret_env", "set_cookie", "private_key", "x_api_key"}
)
"""Keys (lower case, ``-`` read as ``_``) whose values are never shown."""
SENSITIVE_WORDS: Final = frozenset(
    {"authorization", "auth", "token", "tokens", "password", "passwd", "secret", "secrets",
     "cookie", "cookies", "credential", "credentials"}
)  # fmt: skip
"""A key holding one of these words (``admin_token``, ``registry_password``) is sensitive..."""
HARMLESS_LAST_WORDS: Final = frozenset({"path", "file", "name", "sha256", "digest", "count"})
"""...unless it names something about the value, not the value (``token_path``)."""

_SECRET_LOOKING: Final = re.compile(
    r"(?P<scheme>\b(?:bearer|basic)\s+)[^\s'\",;]+"  # an Authorization header's value
    r"|(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])",  # secrets.token_urlsafe(32)
    re.IGNORECASE,
)
_BROKEN_OUTPUT: Final = frozenset({errno.EPIPE, errno.EIO, errno.EBADF})


def is_sensitive_key(key: str) -> bool:
    """Whether a value logged under ``key`` must be masked."""
    normal = key.lower().replace("-", "_")
    if normal in SENSITIVE_KEYS:
        return True
    words = normal.split("_")
    return words[-1] not in HARMLESS_LAST_WORDS and not SENSITIVE_WORDS.isdisjoint(words)


def redact_text(text: str) -> str:
    """``text`` with bearer credentials and pier token lookalikes masked."""
    return _SECRET_LOOKING.sub(lambda m: (m.group("scheme") or "") + REDACTED, text)


def redact(value: Any) -> Any:
    """A copy of ``value`` (str, mapping, list, tuple or anything else) with secrets masked."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_sensitive_key(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return redact_text(value.decode("utf-8", "replace"))
    return value


def redact_event(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secrets in every key and value of the event (run it
    after ``format_exc_info`` so the traceback text is masked too)."""
    redacted: EventDict = redact(event_dict)
    return redacted


class SafeStream:
    """A text stream whose writes never raise when the reader has gone (EPIPE), the
    terminal has closed (EIO) or the stream is closed: the output is dropped."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.is_broken = False

    def write(self, text: str) -> int:
        if not self.is_broken:
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError) as exc:
                self._broke(exc)
        return len(text)

    def flush(self) -> None:
        if not self.is_broken:
            try:
                self._stream.flush()
            except (OSError, ValueError) as exc:
                self._broke(exc)

    def line(self, text: str) -> None:
        """Write ``text`` and a newline (what `pier up` says to its user)."""
        self.write(text + "\n")

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False

    def _broke(self, exc: OSError | ValueError) -> None:
        """Drop this write; stop writing for good if the reader or terminal is gone."""
        if isinstance(exc, OSError) and exc.errno not in _BROKEN_OUTPUT:
            return  # e.g. a full disk under a redirected log: this line is lost, not pier
        self.is_broken = True
        _detach(self._stream)


def _detach(stream: TextIO) -> None:
    """Point a broken stream's file descriptor at /dev/null, so that whatever else writes
    to it (the interpreter flushing at exit, a library's print) succeeds silently."""
    try:
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def configure_logging(
    stream: TextIO | SafeStream | None = None,
    *,
    level: int = logging.INFO,
    timestamp_fmt: str = "iso",
    colors: bool = False,
    stdlib_level: int = logging.WARNING,
) -> SafeStream:
    """Send structlog events of ``level`` and up, and other libraries' records of
    ``stdlib_level`` and up, to ``stream`` (default stderr), redacted and without
    locals; returns the (pipe-safe) stream written to."""
    out = stream if isinstance(stream, SafeStream) else SafeStream(stream or sys.stderr)
    shared: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt=timestamp_fmt, utc=True),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_event,
            structlog.dev.ConsoleRenderer(
                colors=colors, exception_formatter=structlog.dev.plain_traceback
            ),
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(stdlib_level)
    logging.getLogger("pier").setLevel(level)
    logging.raiseExceptions = False  # a record that cannot be written is dropped, not shown
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
    )
    return out
