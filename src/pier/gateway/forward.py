"""One request through the gateway: pick an instance, send, relay the response.

The common path is synchronous: the request is complete, an idle pooled connection to
the chosen instance exists, so the request goes out in one write from inside the
client's parser callback, and each read from the instance becomes one write to the
client. Tasks are only created to open a new connection (with a retry on another
instance when the connection is refused) or to wait for routes.

Retries: only while no byte of the request was written. A refused or timed-out connect
moves on to another instance of the node (each at most once); a pooled connection found
closed is simply not used. After the request was written, a lost connection is a 502
``upstream_disconnected``: the instance may have acted on the request.
"""

from __future__ import annotations

import asyncio
from random import random
from typing import Final, Protocol

from pier.domain.errors import PierError
from pier.gateway.balance import SessionPins, pick_instance
from pier.gateway.errors import (
    NoHealthyInstance,
    UpstreamConnectFailed,
    UpstreamTimeout,
    render_error,
)
from pier.gateway.flow import ClientOutput, CopyingOutput
from pier.gateway.limits import Deadlines
from pier.gateway.metrics import GatewayMetrics, NodeStats
from pier.gateway.mirror import MirrorRequest, Mirrors
from pier.gateway.pool import Upstream
from pier.gateway.relay import UpstreamConnection
from pier.gateway.routes import AliasRequest, AliasTarget, MirrorTarget, NodeTarget, Router

_HTTP11_HOST: Final = b" HTTP/1.1\r\nhost: "


class Shared(Protocol):
    """What exchanges share in one gateway process (``app.Gateway``)."""

    loop: asyncio.AbstractEventLoop
    router: Router
    """The route table served now."""
    deadlines: Deadlines
    metrics: GatewayMetrics
    no_instance_wait_s: float
    sessions: SessionPins
    """Where each sticky session went last."""
    mirrors: Mirrors

    async def wait_for_routes(self, timeout_s: float) -> None:
        """Return when the routes change, or after ``timeout_s``."""


class Client(Protocol):
    """The client connection an exchange answers (``server.ClientConnection``)."""

    @property
    def output(self) -> ClientOutput: ...

    def cut(self) -> None:
        """End the connection with a reset (a response under way cannot be completed)."""

    def exchange_done(self, exchange: Exchange) -> None:
        """``exchange`` is answered: go on with the next request, or close."""


class Exchange:
    """A request the client sent completely, and the state of its response."""

    __slots__ = (
        "alias",
        "body",
        "client",
        "conn",
        "gateway",
        "head",
        "http11",
        "is_done",
        "is_head",
        "keep_alive",
        "key",
        "limit",
        "method",
        "node",
        "output",
        "request_id",
        "response_headers",
        "stats",
        "target",
        "upstream",
        "written_from",
    )

    def __init__(
        self,
        client: Client,
        gateway: Shared,
        node: NodeTarget | None,
        alias: AliasRequest | None,
        key: bytes,
        method: bytes,
        target: bytes,
        head: bytes,
        body: bytes,
        keep_alive: bool,
        http11: bool,
        limit: int,
        request_id: bytes,
    ) -> None:
        self.client = client
        self.output = client.output
        self.gateway = gateway
        self.node = node
        self.alias = alias
        self.key = key
        self.method = method
        self.target = target
        self.is_head = method == b"HEAD"
        self.head = head
        self.body = body
        self.keep_alive = keep_alive
        self.http11 = http11
        self.limit = limit
        self.request_id = request_id
        """The ``x-request-id`` header line."""
        self.response_headers = request_id
        """The header lines the gateway adds to the response: the ``x-request-id``, and
        through an alias the node's (and ``x-pier-repinned`` once a sticky session's
        instance is picked)."""
        if alias is not None and alias.leg is not None:
            self.response_headers = request_id + alias.leg.header
        self.upstream: Upstream | None = None
        self.conn: UpstreamConnection | None = None
        self.stats: NodeStats | None = None
        self.is_done = False
        self.written_from = client.output.written
        """The client output's byte count when this exchange's answer began."""

    def _choose_mirrors(self, alias: AliasRequest, output: ClientOutput) -> None:
        """Pick the mirrors this request is copied to (each by its share) and, if there is
        room for the copies, record the answer to compare theirs with."""
        chosen: list[MirrorTarget] | None = None
        for mirror in alias.target.mirrors:  # most requests: no list made, none chosen
            if random() < mirror.fraction:
                if chosen is None:
                    chosen = [mirror]
                else:
                    chosen.append(mirror)
        if chosen is None:
            return
        mirrors = self.gateway.mirrors
        if mirrors.reserve(chosen, len(self.body)):
            alias.mirrors = chosen
            self.output = CopyingOutput(output, mirrors.limits.max_body_bytes)

    def _send_copies(self, alias: AliasRequest, status: int) -> None:
        """The answer is relayed: queue the copies (not if the client went away)."""
        chosen: list[MirrorTarget] = alias.mirrors  # type: ignore[assignment]  # checked
        alias.mirrors = None
        mirrors = self.gateway.mirrors
        if status == 499:
            mirrors.cancel(chosen)
            return
        output = self.output
        primary = output.copy() if isinstance(output, CopyingOutput) and status == 200 else None
        request = MirrorRequest(self.method, self.target, self.head, self.body)
        for target in chosen:
            mirrors.submit(target, request, primary)

    def start(self) -> None:
        """Send the request to an instance, or wait briefly for one to appear."""
        self.written_from = self.client.output.written  # a pipelined answer starts now
        node = self.node
        if node is None or not node.instances:
            self.gateway.loop.create_task(self._wait_for_instances())
            return
        gateway = self.gateway
        now = gateway.loop.time()
        self.stats = stats = node.stats
        stats.begin(now)
        gateway.deadlines.add(self, now + node.timeout_s)
        alias = self.alias
        if alias is not None:
            upstream = self._pick_for_alias(alias, node, now)
        else:
            instances = node.instances
            upstream = instances[0] if len(instances) == 1 else pick_instance(instances, now)
        upstream.acquire()
        self.upstream = upstream
        conn = upstream.take_idle(now)
        if conn is None:
            gateway.loop.create_task(self._connect(upstream))
        else:
            self._send(upstream, conn, now)

    def _pick_for_alias(self, alias: AliasRequest, node: NodeTarget, now: float) -> Upstream:
        """The instance of a sticky session's ring (the response says when it moved), or
        the less loaded of two. The first time, the mirrors the request is copied to are
        chosen (when it is sent: a request never sent is never copied), and the time of
        this first try is kept for the alias's figures."""
        if not alias.started_at:
            alias.started_at = now
        if alias.target.mirrors and not alias.has_chosen_mirrors:
            alias.has_chosen_mirrors = True
            self._choose_mirrors(alias, self.output)
        if alias.session >= 0 and node.ring is not None:
            upstream = self._pick_pinned(alias, node, now)
        else:
            instances = node.instances
            upstream = instances[0] if len(instances) == 1 else pick_instance(instances, now)
        return upstream

    def _pick_pinned(self, alias: AliasRequest, node: NodeTarget, now: float) -> Upstream:
        """A sticky session's instance on the node's ring (re-pinned if it moved)."""
        upstream = node.ring.pick(alias.session)  # type: ignore[union-attr]  # checked
        if upstream is None:
            return pick_instance(node.instances, now)
        alias.is_repinned = self.gateway.sessions.pin(alias.session, upstream.instance_id)
        if alias.is_repinned:
            self.response_headers = alias.header_lines(self.request_id)
        return upstream

    def _send(self, upstream: Upstream, conn: UpstreamConnection, now: float) -> None:
        self.conn = conn
        conn.send(
            self,
            b"".join(
                (
                    self.method,
                    b" ",
                    upstream.path_prefix,
                    self.target,
                    _HTTP11_HOST,
                    upstream.host_header,
                    self.head,
                    self.body,
                )
            ),
            now,
        )

    async def _connect(self, upstream: Upstream) -> None:
        loop = self.gateway.loop
        tried = [upstream]
        while True:
            try:
                conn = await upstream.connect(loop)
                break
            except (OSError, TimeoutError) as e:
                now = loop.time()
                upstream.mark_down(now)
                if self.upstream is upstream:
                    upstream.release()
                    self.upstream = None
                node = self.node
                if self.is_done or node is None:
                    return
                others = [u for u in node.instances if u not in tried]
                if not others:
                    reason = str(e) or type(e).__name__
                    self.fail(UpstreamConnectFailed(len(tried), reason))
                    return
                upstream = pick_instance(others, now)
                upstream.acquire()
                self.upstream = upstream
                tried.append(upstream)
                idle = upstream.take_idle(now)
                if idle is not None:
                    conn = idle
                    break
        if self.is_done:
            upstream.put_idle(conn)
        else:
            self._send(upstream, conn, loop.time())

    async def _wait_for_instances(self) -> None:
        """Wait for the node (or a node of the alias) to have a Healthy instance: briefly,
        or up to the node's timeout when it scales from zero. A waiting request counts as
        in flight for the node, so the autoscaler sees the demand."""
        gateway = self.gateway
        loop = gateway.loop
        started = loop.time()
        if self.alias is not None and not self.alias.started_at:
            self.alias.started_at = started
        waiting: NodeStats | None = None
        try:
            while not self.is_done:
                target = gateway.router.resolve(self.alias is not None, self.key)
                if isinstance(target, PierError):
                    self.fail(target)
                    return
                if isinstance(target, AliasTarget):
                    node = self.node = self._repick(target)
                else:
                    node = self.node = target
                if node is not None and node.instances:
                    if waiting is not None:
                        waiting.end(loop.time())
                        waiting = None
                    self.start()
                    return
                wait_s = gateway.no_instance_wait_s
                if node is not None and node.scales_from_zero:
                    wait_s = max(wait_s, node.timeout_s)
                    if waiting is None:
                        waiting = node.stats
                        waiting.begin(loop.time())
                remaining = started + wait_s - loop.time()
                if remaining <= 0:
                    self.fail(NoHealthyInstance(wait_s))
                    return
                await gateway.wait_for_routes(remaining)
        finally:
            if waiting is not None:
                waiting.end(loop.time())

    def _repick(self, target: AliasTarget) -> NodeTarget | None:
        alias: AliasRequest = self.alias  # type: ignore[assignment]  # an alias's key
        node = alias.repick(target)
        self.response_headers = alias.header_lines(self.request_id)
        return node

    def fail(self, error: PierError) -> None:
        """Answer with ``error``, or cut the client off if the response had started."""
        if self.is_done:
            return
        conn = self.conn
        is_started = conn is not None and conn.has_relayed
        if conn is not None:
            conn.detach()
        if is_started:
            self.keep_alive = False
            self.client.cut()
        else:
            self.output.write(
                render_error(
                    error,
                    key=self.key,
                    is_alias=self.alias is not None,
                    node=self.node.node if self.node is not None else None,
                    keep_alive=self.keep_alive,
                    http11=self.http11,
                    headers=self.response_headers,
                )
            )
        self.finish(error.http_status, None)

    def close_client_after(self) -> None:
        """The response is delimited by a close: the client connection ends after it."""
        self.keep_alive = False

    def expire(self) -> None:
        """The node's timeout_s passed (called by the deadline sweep)."""
        node = self.node
        self.fail(UpstreamTimeout(node.timeout_s if node is not None else 0.0))

    def abandon(self) -> None:
        """The client went away: stop working on its request."""
        if self.is_done:
            return
        if self.conn is not None:
            self.conn.detach()
        self.keep_alive = False
        self.finish(499, None)

    def finish(self, status: int, latency_s: float | None) -> None:
        """Account for the exchange and let the client connection go on."""
        self.is_done = True
        self.conn = None
        gateway = self.gateway
        gateway.deadlines.remove(self)
        received = len(self.method) + len(self.target) + len(self.head) + len(self.body)
        sent = self.client.output.written - self.written_from
        upstream = self.upstream
        if upstream is not None:
            upstream.done(status, latency_s is not None)
            upstream.bytes_in += received
            upstream.bytes_out += sent
            self.upstream = None
        now = gateway.loop.time()
        stats = self.stats
        if stats is not None:
            stats.end(now)
        elif self.node is not None:
            stats = self.node.stats
        else:
            stats = gateway.metrics.unrouted
        stats.record(status, latency_s, received, sent)
        alias = self.alias
        if alias is not None:
            leg = alias.leg
            if leg is not None:  # timed from the first try; never tried: no latency
                started_at = alias.started_at
                leg.stats.record(status, now - started_at if started_at else None, received, sent)
            if alias.mirrors is not None:
                self._send_copies(alias, status)
        self.client.exchange_done(self)
