"""HTTP/1.1 bytes the gateway writes itself: status lines, framing, headers it rewrites.

Everything here is built once at import, so the hot path only joins ready-made bytes.
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

# What a request header is to the gateway (``REQUEST_HEADERS``): the values are small ints
# so the hot path compares them cheaply.
FORWARD: Final = 0
"""Copied to the instance as it came."""
DROP: Final = 1
"""Hop-by-hop headers, and x-forwarded-proto (the gateway writes its own)."""
CONTENT_LENGTH: Final = 2
AUTHORIZATION: Final = 3
TRANSFER_ENCODING: Final = 4
EXPECT: Final = 5
NODE_ID: Final = 6
NODE_ALIAS: Final = 7
PROJECT: Final = 8
"""x-pier-project."""
FOLDER: Final = 9
"""x-folder-id: the project when x-pier-project is absent."""
HOST: Final = 10
"""Required once in HTTP/1.1; rewritten for the instance."""
REQUEST_ID: Final = 11
"""x-request-id: kept if valid, else replaced; sent back in the response."""
FORWARDED_FOR: Final = 12
"""x-forwarded-for: the client's address is appended."""

_REQUEST_HEADER_KINDS: Final = {
    b"host": HOST,
    b"x-forwarded-proto": DROP,
    **dict.fromkeys(HOP_BY_HOP - {b"transfer-encoding"}, DROP),
    b"content-length": CONTENT_LENGTH,
    b"authorization": AUTHORIZATION,
    b"transfer-encoding": TRANSFER_ENCODING,
    b"expect": EXPECT,
    b"x-node-id": NODE_ID,
    b"x-node-alias": NODE_ALIAS,
    b"x-pier-project": PROJECT,
    b"x-folder-id": FOLDER,
    b"x-request-id": REQUEST_ID,
    b"x-forwarded-for": FORWARDED_FOR,
}
_COMMON_FORWARDED: Final = (
    b"content-type",
    b"user-agent",
    b"accept",
    b"accept-encoding",
    b"accept-language",
    b"cache-control",
    b"content-encoding",
    b"cookie",
    b"origin",
    b"referer",
    b"traceparent",
    b"tracestate",
)


def _spellings(name: bytes) -> set[bytes]:
    return {name, name.title(), name.upper(), name.title().replace(b"-Id", b"-ID")}


REQUEST_HEADERS: Final = {
    spelling: kind
    for name, kind in (
        *_REQUEST_HEADER_KINDS.items(),
        *((name, FORWARD) for name in _COMMON_FORWARDED),
    )
    for spelling in _spellings(name)
}
"""Header name as sent (common spellings) -> kind; other names are looked up lower-cased
in ``REQUEST_HEADERS_LOWER`` (one dict lookup instead of lower() + a set test)."""
REQUEST_HEADERS_LOWER: Final = _REQUEST_HEADER_KINDS

NO_BODY_STATUSES: Final = frozenset({204, 304})

CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
CHUNKED: Final = b"transfer-encoding: chunked\r\n"
LAST_CHUNK: Final = b"0\r\n\r\n"
CRLF: Final = b"\r\n"
CONNECTION_CLOSE: Final = b"connection: close\r\n"
CONNECTION_KEEP_ALIVE: Final = b"connection: keep-alive\r\n"


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
    """A whole response with a Content-Length body, for answers the gateway makes itself;
    ``headers`` are more header lines, each ending in CRLF."""
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
