"""HTTP/1.1 bytes pier's servers write themselves: status lines, framing, connection
headers, simple responses.

Everything here is built once at import, so the hot paths only join ready-made bytes.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

STATUS_LINES: Final[dict[int, bytes]] = {
    int(s): b"HTTP/1.1 %d %s\r\n" % (s, s.phrase.encode("latin-1")) for s in HTTPStatus
}

HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
"""Headers about one connection, never forwarded (RFC 9110, section 7.6.1)."""

NO_BODY_STATUSES: Final = frozenset({204, 304})

CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
CHUNKED: Final = b"transfer-encoding: chunked\r\n"
LAST_CHUNK: Final = b"0\r\n\r\n"
CRLF: Final = b"\r\n"
CONNECTION_CLOSE: Final = b"connection: close\r\n"
CONNECTION_KEEP_ALIVE: Final = b"connection: keep-alive\r\n"
JSON: Final = b"application/json"


def status_line(status: int) -> bytes:
    """``HTTP/1.1 200 OK\\r\\n``; an unknown status gets an empty reason phrase."""
    line = STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


def connection_header(*, keep_alive: bool, http11: bool) -> bytes:
    """What a response says about the client connection: nothing in the common case."""
    if not keep_alive:
        return CONNECTION_CLOSE
    return b"" if http11 else CONNECTION_KEEP_ALIVE


def simple_response(
    status: int,
    content_type: bytes,
    body: bytes,
    *,
    keep_alive: bool,
    http11: bool = True,
    headers: bytes = b"",
) -> bytes:
    """A whole response with a Content-Length body; ``headers`` are more header lines,
    each ending in CRLF."""
    return b"".join(
        (
            status_line(status),
            b"content-type: ",
            content_type,
            b"\r\ncontent-length: %d\r\n" % len(body),
            headers,
            connection_header(keep_alive=keep_alive, http11=http11),
            CRLF,
            body,
        )
    )
