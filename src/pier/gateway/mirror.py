"""Mirroring: copies of an alias's requests sent to another node, answers discarded.

A mirrored request never waits for its copy, and a copy can never fail it: the copy is
sent after the primary's answer was relayed to the caller, from a queue of its own, on
connections of its own (the mirror node's pools). While the primary is relayed, a
``CopyingOutput`` keeps the first ``max_body_bytes`` of its answer, to compare the
mirror's with. What copies may hold is bounded by ``MirrorLimits``:
  * ``queue_size``: copies waiting to be sent, counting the primaries being recorded for
    them; a request finding the queue full is not mirrored (``dropped``);
  * ``max_in_flight``: copies being sent at once; the others wait in the queue;
  * ``max_bytes``: request bodies and recorded answers of waiting and in-flight copies;
  * ``max_body_bytes``: a larger request is not mirrored (``dropped``), a larger answer
    is not compared;
  * ``timeout_s``: a copy unanswered this long (or the node's timeout, if shorter)
    fails, which frees its place. A mirror that hangs therefore fills ``max_in_flight``,
    then the queue, then its copies are dropped: the callers see nothing of it;
  * ``batch_wait_s``: above 0, copies are sent in bursts, the first of a burst waiting
    at most this long (a burst that fills ``max_in_flight`` or the queue goes at once).
    A copy sent on its own wakes the mirror's server, and then the gateway for its
    answer, once per copy; a burst is handled in one wake-up on each side. The price: a
    burst reaches the mirror node at once, so its latency figures are those of a burst.
    Off by default: on a 2-core machine the wake-ups it saves (about 1 per copy at the
    mirror's server down to 0.2-0.4) did not show in the CPU per request.

A copy is load on the mirror node like any request: it counts in the node's own figures
(requests, latency, the in-flight integral the autoscaler reads). Each copy ends as one
of ``MirrorStats``' outcomes: sent (answered below 500), error (a
5xx, no instance, a failed connection, a timeout) or dropped; its latency is counted,
and when both answers are 200 V2 JSON, whether the outputs agree (``compare``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final, Protocol

from pier.domain.errors import PierError
from pier.gateway.balance import pick_instance
from pier.gateway.compare import compare_answers
from pier.gateway.errors import UpstreamTimeout
from pier.gateway.flow import CopyingOutput
from pier.gateway.limits import Deadlines, MirrorLimits
from pier.gateway.pool import Upstream
from pier.gateway.relay import UpstreamConnection
from pier.gateway.routes import MirrorTarget

_HTTP11_HOST: Final = b" HTTP/1.1\r\nhost: "
_MIRRORED: Final = b"x-pier-mirrored: 1\r\n\r\n"


class Owner(Protocol):
    """What a copy needs of the gateway process (``app.Gateway``)."""

    loop: asyncio.AbstractEventLoop
    deadlines: Deadlines


class Mirrors:
    """This worker's copies: the queue, the in-flight budget, the bytes held."""

    def __init__(self, owner: Owner, limits: MirrorLimits) -> None:
        self.owner = owner
        self.limits = limits
        self._queue: deque[MirrorCopy] = deque()
        self.recording = 0
        """Primaries being relayed whose copies will be queued."""
        self.in_flight = 0
        self.held_bytes = 0
        self._burst: asyncio.Handle | None = None
        """The coming burst (None: none is due)."""
        self._is_burst_soon = False
        """The coming burst is due now, not after ``batch_wait_s``."""

    def reserve(self, targets: list[MirrorTarget], body_bytes: int) -> bool:
        """Make room for copies of a request with a ``body_bytes`` body to ``targets``
        (True), or count them dropped (False)."""
        limits = self.limits
        if (
            body_bytes > limits.max_body_bytes
            or self.recording + len(self._queue) + len(targets) > limits.queue_size
            or self.held_bytes + body_bytes * len(targets) > limits.max_bytes
        ):
            for target in targets:
                target.stats.count_dropped()
            return False
        self.recording += len(targets)
        return True

    def submit(self, target: MirrorTarget, request: MirrorRequest, primary: bytes | None) -> None:
        """Queue a copy reserved for: its primary was answered (``primary``: its answer
        when it can be compared)."""
        self.recording -= 1
        size = len(request.body) + (len(primary) if primary is not None else 0)
        if self.held_bytes + size > self.limits.max_bytes:
            target.stats.count_dropped()
            return
        self.held_bytes += size
        self._queue.append(MirrorCopy(self, target, request, primary, size))
        self._schedule()

    def cancel(self, targets: list[MirrorTarget]) -> None:
        """The primary went wrong (the client left): its copies are not sent."""
        self.recording -= len(targets)
        for target in targets:
            target.stats.count_dropped()

    def done(self, copy: MirrorCopy) -> None:
        self.in_flight -= 1
        self.held_bytes -= copy.size
        if self._queue:
            self._schedule()

    def _schedule(self) -> None:
        """Have the waiting copies sent together, from the loop (never from the callback
        of the answer that queued one): at once when they fill the in-flight budget, else
        once ``batch_wait_s`` has passed (at once too when the queue is full, so that no
        copy is dropped for the wait). Nothing is due while the budget is spent: the
        next copy done calls this again."""
        limits = self.limits
        room = limits.max_in_flight - self.in_flight
        if room <= 0:
            return
        waiting = len(self._queue)
        is_full = waiting >= room or waiting + self.recording >= limits.queue_size
        burst = self._burst
        if burst is not None:
            if self._is_burst_soon or not is_full:
                return
            burst.cancel()
        loop = self.owner.loop
        wait_s = limits.batch_wait_s
        self._is_burst_soon = is_full or wait_s <= 0
        if self._is_burst_soon:
            self._burst = loop.call_soon(self.send_burst)
        else:
            self._burst = loop.call_later(wait_s, self.send_burst)

    def send_burst(self) -> None:
        """Send the waiting copies, as many as the in-flight budget allows."""
        self._burst = None
        queue = self._queue
        while queue and self.in_flight < self.limits.max_in_flight:
            self.in_flight += 1
            queue.popleft().start()


class MirrorRequest:
    """The parts of a request a copy is made of (shared by its copies)."""

    __slots__ = ("body", "head", "method", "target")

    def __init__(self, method: bytes, target: bytes, head: bytes, body: bytes) -> None:
        self.method = method
        self.target = target
        self.head = head
        """Header lines ending in the blank line, as the primary had them."""
        self.body = body


class MirrorCopy:
    """One copy being sent: the relay's ``Exchange`` for the mirror's answer."""

    __slots__ = (
        "conn",
        "is_begun",
        "is_done",
        "mirrors",
        "output",
        "primary",
        "request",
        "size",
        "target",
        "upstream",
    )

    keep_alive: Final = True
    http11: Final = True
    response_headers: Final = b""

    def __init__(
        self,
        mirrors: Mirrors,
        target: MirrorTarget,
        request: MirrorRequest,
        primary: bytes | None,
        size: int,
    ) -> None:
        self.mirrors = mirrors
        self.target = target
        self.request = request
        self.primary = primary
        self.size = size
        self.output = CopyingOutput(None, mirrors.limits.max_body_bytes)
        self.upstream: Upstream | None = None
        self.conn: UpstreamConnection | None = None
        self.is_done = False
        self.is_begun = False
        """Counted in flight for the mirror node."""

    @property
    def is_head(self) -> bool:
        return self.request.method == b"HEAD"

    @property
    def limit(self) -> int:
        return self.target.node.max_body_bytes

    def start(self) -> None:
        owner = self.mirrors.owner
        node = self.target.node
        if not node.instances:
            self._end_failed()
            return
        now = owner.loop.time()
        node.stats.begin(now)
        self.is_begun = True
        timeout_s = min(node.timeout_s, self.mirrors.limits.timeout_s)
        owner.deadlines.add(self, now + timeout_s)
        upstream = self.upstream = pick_instance(node.instances, now)
        upstream.acquire()
        conn = upstream.take_idle(now)
        if conn is None:
            owner.loop.create_task(self._connect(upstream))
        else:
            self._send(upstream, conn, now)

    async def _connect(self, upstream: Upstream) -> None:
        loop = self.mirrors.owner.loop
        try:
            conn = await upstream.connect(loop)
        except (OSError, TimeoutError):
            if not self.is_done:
                self._end_failed(502)
            return
        if self.is_done:
            upstream.put_idle(conn)
        else:
            self._send(upstream, conn, loop.time())

    def _send(self, upstream: Upstream, conn: UpstreamConnection, now: float) -> None:
        self.conn = conn
        request = self.request
        head = request.head
        conn.send(
            self,
            b"".join(
                (
                    request.method,
                    b" ",
                    upstream.path_prefix,
                    request.target,
                    _HTTP11_HOST,
                    upstream.host_header,
                    head[:-2] if head.endswith(b"\r\n\r\n") else head,
                    _MIRRORED,
                    request.body,
                )
            ),
            now,
        )

    def close_client_after(self) -> None:
        """Nothing to do: the answer goes to no client."""

    def expire(self) -> None:
        self.fail(UpstreamTimeout(self.target.node.timeout_s))

    def fail(self, error: PierError) -> None:
        """No (whole) answer: an error outcome."""
        if self.is_done:
            return
        if self.conn is not None:
            self.conn.detach()
        self._end_failed(error.http_status)

    def finish(self, status: int, latency_s: float | None) -> None:
        """The mirror answered: count it and compare its outputs with the primary's."""
        if self.is_done:
            return
        stats = self.target.stats
        stats.answered(status, latency_s or 0.0)
        self.target.node.stats.record(status, latency_s)
        answer = self.output.copy()
        if self.primary is not None and status == 200 and answer is not None:
            comparison = compare_answers(self.primary, answer, self.mirrors.limits.tolerance)
            if comparison is not None:
                stats.compared(comparison.is_equal, comparison.max_abs_difference)
        self._end(status, True)

    def _end_failed(self, status: int = 503) -> None:
        self.target.stats.count_error()
        if self.is_begun:
            self.target.node.stats.record(status, None)
        self._end(status, False)

    def _end(self, status: int, is_answer: bool) -> None:
        self.is_done = True
        self.conn = None
        owner = self.mirrors.owner
        owner.deadlines.remove(self)
        if self.is_begun:
            self.is_begun = False
            self.target.node.stats.end(owner.loop.time())
        if self.upstream is not None:
            self.upstream.done(status, is_answer)
            self.upstream = None
        self.mirrors.done(self)
