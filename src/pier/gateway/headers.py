"""What each request header is to the gateway: forwarded as it came, dropped, or read.

The values are small ints so the hot path compares them cheaply; common spellings of
the names are looked up as sent, others lower-cased.
"""

from __future__ import annotations

from typing import Final

from pier.http.wire import HOP_BY_HOP

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
