"""Body size limits and whole-request timeouts.

Request bodies are buffered whole (at most the limit, 16 MiB by default) before anything
is sent to an instance. That is what lets the gateway refuse an oversize chunked body with
413 before an instance sees a byte of it, and retry a refused connection on another
instance with the same body. A ``Content-Length`` over the limit is refused as soon as
the headers arrive (and ``Expect: 100-continue`` is only answered for bodies that fit);
the body is then read and thrown away so the client can read the 413 instead of hitting
a reset, and the connection is closed after it (or after ``LINGER_S``).

Response bodies are streamed: each read from the instance is written to the client at
once. A ``Content-Length`` over the limit becomes a 502 ``response_too_large`` before any
byte is relayed; a chunked or close-delimited response is counted as it streams. One that
goes over the limit before anything was relayed is a 502 too; after its head was sent it
can only be cut off: the client connection is reset (not closed, which would pass for the
end of a close-delimited body), and a chunked body never gets its last chunk.

A node's ``timeout_s`` covers the whole request, from the moment the gateway has the
request until the response is complete: 504 ``upstream_timeout`` if no byte of the
response was sent yet, else the client connection is cut. Timeouts are checked by one
sweep every ``SWEEP_S`` instead of a timer per request.

Clients are bounded as nginx bounds them (``ClientLimits``): the request line (414) and
the headers (431) are counted as they are parsed, and a head that never ends is refused
once the bytes fed to the parser for it pass both limits together, so memory stays
bounded however much a client sends. The head must arrive within ``header_timeout_s`` of
its first read, and each read of a body within ``body_timeout_s`` of the one before
(408, on the same sweep as the node timeouts). While a connection owes responses, the
gateway reads at most ``max_pipelined_bytes`` more of it, then stops reading until they
are answered.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final, Protocol

DEFAULT_MAX_BODY_BYTES: Final = 16 * 2**20
LINGER_S: Final = 10.0
"""How long a refused body may keep arriving before the connection is closed anyway."""
SWEEP_S: Final = 0.05


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """What one client connection may send (the gateway's settings of the same names)."""

    max_request_line_bytes: int = 8 * 1024
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout_s: float = 60.0
    body_timeout_s: float = 60.0
    max_pipelined_bytes: int = 2**20


@dataclass(frozen=True, slots=True)
class MirrorLimits:
    """What mirrored copies may take (the gateway's ``mirror_*`` settings)."""

    queue_size: int = 256
    """Copies waiting to be sent, with the primaries being recorded for them."""
    max_in_flight: int = 32
    """Copies being sent at once."""
    max_bytes: int = 64 * 2**20
    """Request bodies and primary answers held for waiting and in-flight copies."""
    max_body_bytes: int = 2**20
    """Larger requests are not mirrored; larger answers are not compared."""
    timeout_s: float = 10.0
    """A copy unanswered this long (or the mirror node's timeout_s, if shorter) fails."""
    tolerance: float = 1e-6
    """Outputs are equal when they differ by at most this, absolutely or relatively."""
    batch_wait_s: float = 0.0
    """Copies are sent in bursts: the first of a burst waits at most this long (0: each
    is sent as soon as its primary was answered)."""


class Expiring(Protocol):
    def expire(self) -> None:
        """The deadline passed."""


class Deadlines:
    """Deadlines of the exchanges in flight (whole request) and of the client connections
    reading a request (head, next body read), checked every SWEEP_S."""

    __slots__ = ("_loop", "pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.pending: dict[Expiring, float] = {}
        """Exchange or connection -> loop time its deadline passes."""

    def add(self, item: Expiring, at: float) -> None:
        """``item`` expires at loop time ``at`` (replacing a deadline it had)."""
        self.pending[item] = at

    def remove(self, item: Expiring) -> None:
        self.pending.pop(item, None)

    def expired(self, now: float) -> list[Expiring]:
        """Remove and return the entries whose deadline is at or before ``now``."""
        done = [item for item, deadline in self.pending.items() if deadline <= now]
        for item in done:
            del self.pending[item]
        return done

    async def run(self) -> None:
        """Expire overdue exchanges forever."""
        while True:
            await asyncio.sleep(SWEEP_S)
            if self.pending:
                for item in self.expired(self._loop.time()):
                    item.expire()


def body_limit(node_limit: int | None, default_limit: int) -> int:
    """The limit that applies to a node's request and response bodies."""
    return node_limit if node_limit is not None else default_limit
