"""Instance endpoints and their pools of keep-alive connections.

An ``Upstream`` outlives route table versions: the registry hands the same object to
every table that lists the instance, so in-flight counts (for balancing) and pooled
connections survive a route update. An instance that leaves the table is retired: its
idle connections close now, the busy ones when their response is complete (draining).

Idle connections are reused newest first and dropped after ``IDLE_S``, below the
keep-alive timeout of common servers (uvicorn's is 5 s), so the gateway closes an idle
connection before the instance does and rarely writes into one that is closing.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

from pier.domain.routes import RouteInstance
from pier.gateway.balance import DOWN_FOR_S
from pier.gateway.relay import UpstreamConnection

IDLE_S: Final = 4.0
"""Pooled connections idle longer than this are closed instead of reused."""
CONNECT_TIMEOUT_S: Final = 3.0


class Upstream:
    """One instance endpoint: where to connect, its pool, and its requests in flight."""

    __slots__ = (
        "answered",
        "bytes_in",
        "bytes_out",
        "down_until",
        "endpoint",
        "failed",
        "host",
        "host_header",
        "idle",
        "idle_s",
        "in_flight",
        "instance_header",
        "instance_id",
        "is_retired",
        "path_prefix",
        "port",
        "ssl",
    )

    def __init__(self, instance: RouteInstance) -> None:
        parts = urlsplit(instance.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"instance endpoint {instance.endpoint!r} is not an http(s) URL")
        is_https = parts.scheme == "https"
        self.instance_id = instance.instance_id
        self.endpoint = instance.endpoint
        self.host = parts.hostname
        self.port = parts.port or (443 if is_https else 80)
        self.ssl: ssl.SSLContext | None = ssl.create_default_context() if is_https else None
        self.host_header = parts.netloc.rsplit("@", 1)[-1].encode("latin-1")
        self.path_prefix = parts.path.rstrip("/").encode("latin-1")
        self.instance_header = b"x-pier-instance: %s\r\n" % self.instance_id.encode("latin-1")
        self.idle: list[UpstreamConnection] = []
        self.idle_s = IDLE_S
        """The node's idle timeout when it sets one: pooled connections older are closed."""
        self.in_flight = 0
        self.down_until = 0.0
        self.is_retired = False
        self.answered = 0
        """Requests the instance answered with a status below 500."""
        self.failed = 0
        """Requests that ended in a 5xx (the instance's, or the gateway's 502/504 for it)
        and connections it refused."""
        self.bytes_in = 0
        """Bytes of the requests sent to the instance (line, headers, body)."""
        self.bytes_out = 0
        """Bytes the gateway wrote to clients for the requests sent to the instance."""

    def take_idle(self, now: float) -> UpstreamConnection | None:
        """A pooled connection that is still open and fresh, or None."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if conn.is_open and now - conn.idle_since < self.idle_s:
                return conn
            conn.close()
        return None

    async def connect(self, loop: asyncio.AbstractEventLoop) -> UpstreamConnection:
        """A new connection to this instance; raises OSError or TimeoutError."""
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            _, conn = await loop.create_connection(
                lambda: UpstreamConnection(self, loop), self.host, self.port, ssl=self.ssl
            )
        return conn

    def acquire(self) -> None:
        """A request to this instance starts (counted for balancing and draining)."""
        self.in_flight += 1

    def release(self) -> None:
        """A request leaves this instance unsent (its connection could not be made)."""
        self.in_flight -= 1

    def done(self, status: int, is_answer: bool) -> None:
        """A request to this instance ended with ``status``; ``is_answer``: the instance
        answered it (else the status is the gateway's, e.g. 499 when the client left,
        which counts neither way)."""
        self.in_flight -= 1
        if status >= 500:
            self.failed += 1
        elif is_answer:
            self.answered += 1

    def mark_down(self, now: float) -> None:
        """The instance refused a connection: it loses every choice for ``DOWN_FOR_S``."""
        self.down_until = now + DOWN_FOR_S
        self.failed += 1

    def keep_idle_for(self, idle_s: float) -> None:
        """Close pooled connections idle longer than ``idle_s`` (the node's idle timeout)."""
        self.idle_s = idle_s

    def put_idle(self, conn: UpstreamConnection) -> None:
        """Put a connection whose response is complete back into the pool (its
        ``idle_since`` says since when it is idle)."""
        if self.is_retired or not conn.is_open:
            conn.close()
            return
        self.idle.append(conn)

    def close_expired(self, now: float) -> None:
        """Close idle connections past ``idle_s`` (called now and then, not per request)."""
        keep = [c for c in self.idle if c.is_open and now - c.idle_since < self.idle_s]
        for conn in self.idle:
            if conn not in keep:
                conn.close()
        self.idle[:] = keep

    def retire(self) -> None:
        """The instance left the routes: close idle connections, busy ones after use."""
        self.is_retired = True
        for conn in self.idle:
            conn.close()
        self.idle.clear()


class UpstreamRegistry:
    """Upstreams by (instance id, endpoint), shared by successive route tables."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], Upstream] = {}
        self._retired: list[Upstream] = []
        """Retired upstreams that still had requests in flight, until those are done."""

    def get(self, instance: RouteInstance) -> Upstream:
        """The Upstream for ``instance``, created on first sight."""
        key = (instance.instance_id, instance.endpoint)
        upstream = self._by_key.get(key)
        if upstream is None:
            upstream = self._by_key[key] = Upstream(instance)
        return upstream

    def retire_all_but(self, keep: Iterable[Upstream]) -> None:
        """Retire every Upstream not in ``keep`` (the ones the new table no longer lists)."""
        kept = {id(u) for u in keep}
        self._retired = [u for u in self._retired if u.in_flight > 0]
        for key, upstream in list(self._by_key.items()):
            if id(upstream) not in kept:
                upstream.retire()
                del self._by_key[key]
                if upstream.in_flight > 0:
                    self._retired.append(upstream)

    def draining(self) -> dict[str, int]:
        """Requests still in flight to instances that left the routes, by instance id: the
        control plane stops an instance once it is no longer listed here."""
        self._retired = [u for u in self._retired if u.in_flight > 0]
        counts: dict[str, int] = {}
        for upstream in self._retired:
            counts[upstream.instance_id] = counts.get(upstream.instance_id, 0) + upstream.in_flight
        return counts

    def close_expired(self, now: float) -> None:
        for upstream in self._by_key.values():
            upstream.close_expired(now)
