"""X-Request-Id: the caller's own when it is a sensible one, else one the gateway makes.

The id goes to the instance with the request and back to the caller with the response,
also on the gateway's own answers, so one request can be followed through both logs.
A made id is a random prefix drawn once per gateway process and a counter: unique, and
one string formatting per request instead of a system call for random bytes.
"""

from __future__ import annotations

import itertools
import os
import re
from typing import Final

MAX_REQUEST_ID_CHARS: Final = 200
_VALID: Final = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,%d}" % MAX_REQUEST_ID_CHARS)
"""A caller's id is kept if it is made of these (a UUID, a ULID, base64, a trace id...)."""


class RequestIds:
    """The ``x-request-id`` header lines of one gateway process."""

    __slots__ = ("_count", "_prefix")

    def __init__(self) -> None:
        self._prefix = b"x-request-id: %s-" % os.urandom(6).hex().encode()
        self._count = itertools.count(1)

    def new(self) -> bytes:
        """A header line (ending in CRLF) with an id no other request of this process has."""
        return b"%s%x\r\n" % (self._prefix, next(self._count))

    @staticmethod
    def given(value: bytes) -> bytes | None:
        """The header line for the caller's ``value``, or None if it is not a valid id."""
        if _VALID.fullmatch(value) is None:
            return None
        return b"x-request-id: %s\r\n" % value
