"""The client connections of one gateway worker, and the cap on them.

Like nginx's ``worker_connections``, ``max_connections`` bounds the client connections a
worker keeps open. Only those count: the route sync and the connections to instances
are outside the cap, and at start the open-files limit is raised to its hard limit (the
cap lowered to fit it if need be) so that they always find a descriptor, and the gateway
never spins on EMFILE.

At the cap, a new connection takes the place of the connection idle longest: one that
waits for its next request (keep-alive) or for its first. With every connection busy
the new one is answered 503 ``too_many_connections`` and closed.

A client connection is idle while nothing is owed on it and no request is being read:
``ClientConnection`` reports the moves with ``mark_idle`` and ``mark_busy``. It breaks
its references to the exchange and the parser when it closes, so its memory is freed at
once, without waiting for the garbage collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import struct
from typing import Any, Final, Generic, Protocol, TypeVar

import structlog

log = structlog.get_logger("pier.gateway")

MAX_REFUSING: Final = 256
"""Refused connections being answered at once; past this, they are closed unanswered."""
REFUSED_LINGER_S: Final = 1.0
"""How long a refused connection may take to send its request (read, so that the close
after the 503 is not a reset) before it is closed anyway."""
RESERVED_FDS: Final = 256 + MAX_REFUSING
"""Descriptors kept for all but client connections and their instance connections:
listening sockets, the route sync, log files, refused connections being answered."""
_RESET: Final = struct.pack("ii", 1, 0)
"""SO_LINGER on, zero seconds: close() sends a TCP reset."""


class Closable(Protocol):
    def close_when_idle(self) -> None:
        """Close now if no response is owed, else after the last one."""


C = TypeVar("C", bound=Closable)


class ClientConnections(Generic[C]):
    """The open client connections of one listening socket, the idle ones in the order
    they became idle, and the cap."""

    __slots__ = ("idle", "idle_closed", "limit", "open", "pending", "refused", "refusing")

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        """None: no cap (a worker's own port, where the control plane reads figures)."""
        self.open: set[C] = set()
        self.idle: dict[C, None] = {}
        """Idle connections, the longest idle first (a dict keeps insertion order)."""
        self.pending = 0
        """Accepted but not yet made: connection_made comes a loop iteration later, after
        a burst of accepts."""
        self.refusing = 0
        self.refused = 0
        """Connections refused at the cap, since start."""
        self.idle_closed = 0
        """Idle connections closed to make room for a new one, since start."""

    def admit(self) -> bool:
        """Make room for a connection being accepted; False when every one is busy."""
        limit = self.limit
        if limit is not None and len(self.open) + self.pending >= limit:
            if not self.idle:
                self.refused += 1
                return False
            self._close_longest_idle()
        self.pending += 1
        return True

    def _close_longest_idle(self) -> None:
        conn = next(iter(self.idle))
        self.remove(conn)  # counted out now, not when its close is complete
        self.idle_closed += 1
        conn.close_when_idle()

    def add(self, conn: C) -> None:
        """``conn`` is made: it counts, idle until its first request begins."""
        self.pending = max(0, self.pending - 1)
        self.open.add(conn)
        self.idle[conn] = None

    def remove(self, conn: C) -> None:
        self.open.discard(conn)
        self.idle.pop(conn, None)

    def mark_idle(self, conn: C) -> None:
        if conn in self.open:
            self.idle[conn] = None

    def mark_busy(self, conn: C) -> None:
        self.idle.pop(conn, None)

    def start_refusing(self) -> None:
        """A refused connection is being answered (``RefusedConnection``)."""
        self.refusing += 1

    def stop_refusing(self) -> None:
        self.refusing -= 1


class RefusedConnection(asyncio.Protocol):
    """A connection over the cap: answered at once, closed once its request was read (so
    the close is a FIN after the answer, not a reset that could hide it), or after
    ``REFUSED_LINGER_S``."""

    __slots__ = ("answer", "connections", "is_counted", "timer", "transport")

    def __init__(self, connections: ClientConnections[Any], answer: bytes) -> None:
        self.connections = connections
        self.answer = answer
        self.transport: Any = None
        self.timer: asyncio.TimerHandle | None = None
        self.is_counted = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.answer)
        connections = self.connections
        if connections.refusing >= MAX_REFUSING:
            transport.close()
            return
        connections.start_refusing()
        self.is_counted = True
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(REFUSED_LINGER_S, transport.close)

    def data_received(self, data: bytes) -> None:
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.is_counted:
            self.is_counted = False
            self.connections.stop_refusing()
        self.transport = None


def reset(transport: Any) -> None:
    """Abort the connection with a TCP reset: a plain close could pass for the end of a
    response whose body is delimited by the close."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    transport.abort()


def fit_open_files(max_connections: int) -> int:
    """Raise this process's open-files limit to its hard limit; return the cap on client
    connections that fits under it (each may also hold a connection to an instance)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * max_connections + RESERVED_FDS
    target = max(soft, wanted) if hard == resource.RLIM_INFINITY else hard
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("open files limit not raised", soft=soft, hard=hard, error=str(e))
    fits = max(1, (soft - RESERVED_FDS) // 2)
    if max_connections <= fits:
        return max_connections
    log.warning(
        "max_connections lowered to fit the open files limit",
        max_connections=max_connections,
        lowered_to=fits,
        open_files_limit=soft,
        hint="raise the hard limit (ulimit -Hn) or lower PIER_GATEWAY__MAX_CONNECTIONS",
    )
    return fits
