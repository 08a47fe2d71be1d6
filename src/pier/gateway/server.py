"""The client side: an asyncio Protocol parsing requests with httptools.

The route, the token and the body limit are checked as soon as the headers are parsed,
so a refused request never waits for its body. Requests are answered in order; a client
that pipelines gets its requests forwarded one after the other.

The callbacks do little on purpose: a header the gateway does not act on is queued as
four slices for one join; the request line, Host and hop-by-hop headers are rebuilt, and
x-forwarded-for, x-forwarded-proto and x-request-id are written by the gateway.
(Reading whole requests from the raw bytes instead was measured: several C-level
searches per request cost more than the callbacks they replace.)

A hostile client is bounded (see ``limits``): the request line and the headers are
counted as they are parsed; a head that never ends is counted by the bytes fed to the
parser for it; the connection is on the deadline sweep only while a request is partly
read, so a request that arrives in one read costs no deadline at all. A request head
that is refused (bad HTTP, too large, too slow, an upgrade) gets one answer, then the
rest of what the client sends is dropped and the connection closed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Final, Protocol

import httptools
import structlog

from pier.domain.errors import BodyTooLarge, PierError, Unauthorized
from pier.gateway import headers
from pier.gateway.connections import ClientConnections, reset
from pier.gateway.errors import (
    BadRequest,
    HeadersTooLarge,
    MethodNotAllowed,
    NodeSuspended,
    NoRoute,
    RequestLineTooLong,
    RequestTimeout,
    UpgradeNotSupported,
    VersionNotSupported,
    render_error,
    split_key,
)
from pier.gateway.flow import ClientOutput
from pier.gateway.forward import Exchange, Shared
from pier.gateway.limits import LINGER_S, ClientLimits
from pier.gateway.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from pier.gateway.request_ids import RequestIds
from pier.gateway.routes import AliasRequest, AliasTarget, NodeTarget, match_request
from pier.http import wire

log = structlog.get_logger("pier.gateway")
_HEADERS: Final = headers.REQUEST_HEADERS
_HEADERS_LOWER: Final = headers.REQUEST_HEADERS_LOWER
_CRLF: Final = b"\r\n"
_REQUEST_LINE_FRAME: Final = len(b"  HTTP/1.1")
"""What a request line has besides its method and target."""


class GatewayState(Shared, Protocol):
    """What client connections share in one gateway process (``app.Gateway``)."""

    client_limits: ClientLimits
    request_ids: RequestIds
    max_body_bytes: int

    def render_health(self, authorization: bytes | None) -> bytes:
        """The body of ``/healthz``."""

    def render_metrics(self, authorization: bytes | None) -> bytes:
        """The body of ``/metrics``."""


class ClientConnection(asyncio.Protocol):
    """One client connection, HTTP/1.1 with keep-alive."""

    __slots__ = (
        "activity",
        "activity_seen",
        "alias",
        "alias_id",
        "authorization",
        "body",
        "body_len",
        "client_address",
        "connections",
        "content_length",
        "current",
        "expects_continue",
        "forwarded",
        "forwarded_for",
        "gateway",
        "has_body",
        "has_head",
        "has_host",
        "head_fed",
        "head_left",
        "headers",
        "headers_left",
        "http11",
        "is_answered",
        "is_broken",
        "is_lingering",
        "is_mid_request",
        "is_paused",
        "is_timed",
        "is_version_known",
        "keep_alive",
        "key",
        "limit",
        "limits",
        "must_close",
        "node",
        "node_id",
        "output",
        "parser",
        "project_id",
        "queue",
        "read_ahead",
        "request_id",
        "target",
        "transport",
        "url",
    )

    # the request being read (reset after each one)
    url: bytes
    headers: list[bytes]
    body: list[bytes]
    body_len: int
    content_length: int | None
    has_body: bool
    authorization: bytes | None
    node_id: bytes | None
    alias_id: bytes | None
    project_id: bytes | None
    expects_continue: bool
    is_answered: bool
    has_head: bool
    has_host: bool
    head_left: int
    """Bytes of header lines this request may still have (max_header_bytes)."""
    headers_left: int
    request_id: bytes | None
    """The ``x-request-id`` header line, once known."""
    forwarded_for: bytes | None
    """The x-forwarded-for the client sent, if any."""
    limit: int
    key: bytes | None
    node: NodeTarget | None
    alias: AliasRequest | None
    target: bytes

    def __init__(
        self, gateway: GatewayState, connections: ClientConnections[ClientConnection]
    ) -> None:
        self.gateway = gateway
        self.connections = connections
        self.is_mid_request = False
        """Between the first byte of a request and its end (idle connections are not)."""
        self.limits: ClientLimits = gateway.client_limits
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None
        self.current: Exchange | None = None
        self.queue: deque[Exchange | bytes] = deque()
        self.output = ClientOutput()
        """Where responses go; it owns the transport's write side and flow control."""
        self.is_broken = False
        self.must_close = False
        self.http11 = True
        self.is_version_known = False
        self.keep_alive = True
        self.activity = 0
        self.activity_seen = -1
        self.head_fed = -1
        """Bytes fed to the parser for the head being read after its first read; -1 while
        no head is counted."""
        self.is_timed = False
        """On the deadline sweep: a request is partly read."""
        self.read_ahead = 0
        """Bytes received while responses are owed."""
        self.is_paused = False
        self.is_lingering = False
        self.client_address = b"unknown"
        self.forwarded = b""
        self._reset()

    # -- connection -------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.output.open(transport)
        self.connections.add(self)
        peer = transport.get_extra_info("peername")
        if peer:
            self.client_address = str(peer[0]).encode("latin-1")
        self.forwarded = b"\r\nx-forwarded-for: %s\r\nx-forwarded-proto: http\r\n" % (
            self.client_address
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.output.close()
        self.connections.remove(self)
        if self.is_timed:
            self._untime()
        self.queue.clear()
        current = self.current
        if current is not None:
            self.current = None
            current.abandon()
        # The parser refers back to this connection: break the cycle, so that the memory
        # is freed now rather than by the garbage collector. Nothing parses after this.
        self.parser = None  # type: ignore[assignment]

    def _mark_idle_if_done(self) -> None:
        """Nothing owed, no request being read: the connection may be closed for room."""
        if self.current is None and not self.queue and not self.is_mid_request:
            self.connections.mark_idle(self)

    def data_received(self, data: bytes) -> None:
        self.activity += 1
        if self.is_broken:
            return  # refused: the rest is dropped until the connection closes
        is_owed = self.current is not None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as e:
            if isinstance(e.__context__, PierError):  # a callback refused the request
                self._refuse_input(e.__context__)
            else:
                log.exception("request handling failed")
                self.cut()
            return
        except httptools.HttpParserUpgrade:  # on_headers_complete refused it already
            self._refuse_input(UpgradeNotSupported())
            return
        except httptools.HttpParserError as e:
            if "version" in str(e):
                self._refuse_input(VersionNotSupported(None))
            else:
                self._refuse_input(BadRequest(f"invalid HTTP request: {e}"))
            return
        if self.current is not None:  # responses owed: the node timeouts run, not ours
            if is_owed:
                self._read_ahead(len(data))
            if self.is_timed:
                self._untime()
        elif self.url:
            self._read_partly(len(data))
        elif self.is_timed:
            self._untime()

    def _read_partly(self, size: int) -> None:
        """A request is partly read (``size`` more bytes of it, maybe): bound its head,
        time its reading. The head has header_timeout_s from its first read; each read of
        the body has body_timeout_s from the one before."""
        limits = self.limits
        if self.has_head:
            timeout_s = limits.body_timeout_s
        else:
            head_fed = self.head_fed
            if head_fed < 0:  # a head began in this read
                self.head_fed = 0
            else:
                self.head_fed = head_fed = head_fed + size
                if head_fed > limits.max_request_line_bytes + limits.max_header_bytes:
                    self._refuse_input(HeadersTooLarge("max_header_bytes", limits.max_header_bytes))
                    return
                if self.is_timed:
                    return
            timeout_s = limits.header_timeout_s
        self.gateway.deadlines.add(self, self.gateway.loop.time() + timeout_s)
        self.is_timed = True

    def _untime(self) -> None:
        self.is_timed = False
        self.gateway.deadlines.remove(self)

    def expire(self) -> None:
        """A request's head, or the next part of its body, came too late (the sweep)."""
        self.is_timed = False
        if self.output.is_closed or self.is_broken:
            return
        if self.is_answered:  # refused already, its body was being dropped: no 2nd answer
            self.is_broken = True
            self.close_when_idle()
        elif self.has_head:
            self._refuse_input(RequestTimeout("body_timeout_s", self.limits.body_timeout_s))
        else:
            self._refuse_input(RequestTimeout("header_timeout_s", self.limits.header_timeout_s))

    def _read_ahead(self, size: int) -> None:
        """Count what arrives while responses are owed; stop reading past the limit (until
        they are answered), so pipelined requests cannot pile up in memory."""
        read_ahead = self.read_ahead + size
        self.read_ahead = read_ahead
        if read_ahead > self.limits.max_pipelined_bytes and not self.is_paused:
            self.is_paused = True
            self.transport.pause_reading()

    def _refuse_input(self, error: PierError) -> None:
        """Answer ``error`` (unless this request was answered already) and read no more."""
        self.is_broken = True
        if self.is_timed:
            self._untime()
        self.key = None
        self.node = None
        self.alias = None
        if not self.is_answered:
            self._answer(error)
        self.close_when_idle()

    def pause_writing(self) -> None:
        self.output.pause()

    def resume_writing(self) -> None:
        self.output.resume()

    def cut(self) -> None:
        """End the connection at once, with a reset: a response already under way cannot
        be completed, and the client must not take a close for the end of its body."""
        if not self.output.is_closed:
            self.output.close()
            reset(self.transport)

    def close_if_quiet(self) -> None:
        """Close a connection with nothing owed that received nothing since the last call
        (the keep-alive timeout, also for clients that stall halfway through a head)."""
        if self.current is None and not self.queue and self.activity == self.activity_seen:
            self.close_when_idle()
        self.activity_seen = self.activity

    def close_when_idle(self) -> None:
        """Close now if no response is owed, else after the last one."""
        self.must_close = True
        if self.current is None and not self.queue and not self.output.is_closed:
            self._close()

    def _close(self) -> None:
        """Close a connection that owes nothing. After a refused head the client may still
        be sending: the answer is followed by a FIN and what comes is dropped until the
        client closes (at most LINGER_S), so it reads the answer instead of a reset."""
        if not self.is_broken:
            self.transport.close()
        elif not self.is_lingering:
            self.is_lingering = True
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.gateway.loop.call_later(LINGER_S, self._linger_over)

    def exchange_done(self, exchange: Exchange) -> None:
        """``exchange`` is answered: start the next pipelined request, or close."""
        self.current = None
        if not exchange.keep_alive:
            self.must_close = True
            self.queue.clear()
        queue = self.queue
        while queue:
            item = queue.popleft()
            if isinstance(item, bytes):
                self.output.write(item)
            else:
                self.current = item
                item.start()
                return
        if self.read_ahead:
            self.read_ahead = 0
            if self.is_paused and not self.output.is_closed:
                self.is_paused = False
                self.transport.resume_reading()
        if self.must_close and not self.output.is_closed:
            self._close()
        elif self.url and not self.is_broken:  # read while owed: its time starts now
            self._read_partly(0)
        else:
            self._mark_idle_if_done()

    # -- httptools callbacks ----------------------------------------------------------------

    def _reset(self) -> None:
        """Forget the request just handled."""
        self.url = b""
        self.headers = []
        self.body = []
        self.body_len = 0
        self.content_length = None
        self.has_body = False
        self.authorization = None
        self.node_id = None
        self.alias_id = None
        self.project_id = None
        self.expects_continue = False
        self.is_answered = False
        self.has_head = False
        self.has_host = False
        limits = self.limits
        self.head_left = limits.max_header_bytes
        self.headers_left = limits.max_headers
        self.request_id = None
        self.forwarded_for = None
        self.limit = self.gateway.max_body_bytes
        self.key = None
        self.node = None
        self.alias = None
        self.is_mid_request = False

    def on_message_begin(self) -> None:
        self.is_mid_request = True
        self.connections.mark_busy(self)

    # Refusals from the callbacks below are raised: httptools stops parsing and
    # data_received answers them (``_refuse_input``).

    def on_url(self, url: bytes) -> None:
        url = self.url + url
        self.url = url
        limit = self.limits.max_request_line_bytes
        if (
            len(url) + 3 + _REQUEST_LINE_FRAME > limit  # 3: GET is the shortest method
            and len(self.parser.get_method()) + len(url) + _REQUEST_LINE_FRAME > limit
        ):
            raise RequestLineTooLong(limit)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_left -= len(name) + len(value) + 4  # ": " and CRLF
        self.headers_left -= 1
        if self.head_left < 0:
            raise HeadersTooLarge("max_header_bytes", self.limits.max_header_bytes)
        kind = _HEADERS.get(name)
        if kind is None:
            kind = _HEADERS_LOWER.get(name.lower(), headers.FORWARD)
        if kind == headers.FORWARD:
            self.headers += (_CRLF, name, b": ", value)
        elif kind == headers.HOST:
            if self.has_host:
                raise BadRequest("more than one Host header")
            self.has_host = True
        elif kind == headers.DROP:
            pass
        elif kind == headers.CONTENT_LENGTH:
            self.content_length = int(value)
            self.has_body = True
            self.headers += (_CRLF, name, b": ", value)
        elif kind == headers.AUTHORIZATION:
            if self.authorization is not None:
                raise BadRequest("more than one Authorization header")
            self.authorization = value
        else:
            self._rare_header(kind, name, value)

    def _rare_header(self, kind: int, name: bytes, value: bytes) -> None:
        if kind == headers.TRANSFER_ENCODING:
            self.has_body = True
        elif kind == headers.EXPECT:
            self.expects_continue = value.lower() == b"100-continue"
        elif kind == headers.REQUEST_ID:
            if self.request_id is None:
                self.request_id = RequestIds.given(value)
        elif kind == headers.FORWARDED_FOR:
            known = self.forwarded_for
            self.forwarded_for = value if known is None else known + b", " + value
        else:
            self._routing_header(kind, value)
            self.headers += (_CRLF, name, b": ", value)

    def _routing_header(self, kind: int, value: bytes) -> None:
        if kind == headers.NODE_ID:
            if self.node_id is not None:
                raise BadRequest("more than one x-node-id header")
            self.node_id = value
        elif kind == headers.NODE_ALIAS:
            if self.alias_id is not None:
                raise BadRequest("more than one x-node-alias header")
            self.alias_id = value
        elif kind == headers.PROJECT or self.project_id is None:
            self.project_id = value.strip()

    def _check_head(self) -> None:
        """What only the whole head tells: the version, an upgrade, the header count,
        Host. Raises the refusal."""
        parser = self.parser
        if not self.is_version_known:  # the first request tells (HTTP/1.0: no chunked bodies)
            version = parser.get_http_version()
            if version != "1.1" and version != "1.0":
                raise VersionNotSupported(version)
            self.http11 = version == "1.1"
            self.is_version_known = True
        if parser.should_upgrade():  # WebSocket, h2c... and CONNECT
            if parser.get_method() == b"CONNECT":
                raise MethodNotAllowed("CONNECT")
            raise UpgradeNotSupported()
        if self.headers_left < 0:
            raise HeadersTooLarge("max_headers", self.limits.max_headers)
        if not self.has_host and self.http11:
            raise BadRequest("an HTTP/1.1 request needs a Host header")

    def on_headers_complete(self) -> None:
        parser = self.parser
        self.has_head = True
        self.head_fed = -1
        if (
            not self.has_host
            or self.headers_left < 0
            or not self.is_version_known
            or parser.should_upgrade()
        ):
            self._check_head()
        if self.request_id is None:
            self.request_id = self.gateway.request_ids.new()
        self.keep_alive = parser.should_keep_alive()
        url = self.url
        match = match_request(url, self.node_id, self.alias_id, self.project_id)
        if match is None:
            self._answer_gateway_path(url)
            return
        is_alias, key, self.target = match
        self.key = key
        router = self.gateway.router
        route = router.resolve(is_alias, key)
        if isinstance(route, PierError):
            self._answer_unknown(route, alias=is_alias)
            return
        if isinstance(route, AliasTarget):
            if route.reads_headers:
                routed, session = route.read_headers(self.headers)
                self.alias = alias = AliasRequest(route, routed, session)
            else:
                self.alias = alias = AliasRequest(route, None, -1)
            self.node = node = alias.node
        else:
            self.node = node = route
        if not route.is_public and not router.may_call(self.authorization, route.project):
            self.alias = None  # the caller learns nothing of the alias's nodes
            self._answer(Unauthorized(), alias=is_alias)
            return
        if node is not None:
            self.limit = node.max_body_bytes
        if self.content_length is not None and self.content_length > self.limit:
            self._answer(BodyTooLarge(self.limit), alias=is_alias, close=True)
            return
        if self.expects_continue and self.has_body and self.http11:
            self._send_or_queue(wire.CONTINUE)  # after the responses owed before it

    def _answer_unknown(self, error: PierError, *, alias: bool = False) -> None:
        """404 (or 503 for a suspended node) for a caller with a token that may call the
        project; 401 for anyone else, who learns nothing about which nodes and aliases
        exist, except that a public node is suspended."""
        is_public = isinstance(error, NodeSuspended) and error.is_public
        project = split_key(self.key)[0] if self.key is not None else ""
        if is_public or self.gateway.router.may_call(self.authorization, project):
            self._answer(error, alias=alias)
        else:
            self._answer(Unauthorized(), alias=alias)

    def on_body(self, body: bytes) -> None:
        if self.is_answered:
            return
        size = self.body_len + len(body)
        if size > self.limit:
            self._answer(BodyTooLarge(self.limit), alias=self.alias is not None, close=True)
            return
        self.body_len = size
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.is_answered:
            self._reset()
            if self.must_close:
                self.close_when_idle()
            else:
                self._mark_idle_if_done()
            return
        headers = self.headers
        if self.content_length is None and self.has_body:  # a chunked body, now counted
            headers.append(b"\r\ncontent-length: %d" % self.body_len)
        request_id: bytes = self.request_id  # type: ignore[assignment]  # set with the head
        if self.forwarded_for is None:
            headers += (self.forwarded, request_id, _CRLF)
        else:
            headers += (self._forwarded_for(), request_id, _CRLF)
        body = self.body
        exchange = Exchange(
            self,
            self.gateway,
            self.node,
            self.alias,
            self.key,  # type: ignore[arg-type]
            self.parser.get_method(),
            self.target,
            b"".join(headers),
            body[0] if len(body) == 1 else b"".join(body),
            self.keep_alive,
            self.http11,
            self.limit,
            request_id,
        )
        self._reset()
        if self.current is None and not self.queue:
            self.current = exchange
            exchange.start()
        else:
            self.queue.append(exchange)

    def _forwarded_for(self) -> bytes:
        """x-forwarded-for with the client's address after the addresses it sent."""
        return b"\r\nx-forwarded-for: %s, %s\r\nx-forwarded-proto: http\r\n" % (
            self.forwarded_for,
            self.client_address,
        )

    def _request_id(self) -> bytes:
        """The request's ``x-request-id`` line, made now if the head did not give one."""
        request_id = self.request_id
        if request_id is None:
            request_id = self.request_id = self.gateway.request_ids.new()
        return request_id

    # -- answers the gateway makes itself -------------------------------------------------

    def _answer_gateway_path(self, url: bytes) -> None:
        path = url.split(b"?", 1)[0]
        if path == b"/healthz":
            body = self.gateway.render_health(self.authorization)
            self._respond(200, b"application/json", body)
        elif path == b"/metrics":
            body = self.gateway.render_metrics(self.authorization)
            self._respond(200, METRICS_CONTENT_TYPE, body)
        else:
            self._answer(NoRoute(url.decode("latin-1")))

    def _respond(self, status: int, content_type: bytes, body: bytes) -> None:
        self.is_answered = True
        keep_alive = self.keep_alive
        self._send_or_queue(
            wire.simple_response(
                status,
                content_type,
                body,
                keep_alive=keep_alive,
                http11=self.http11,
                headers=self._request_id(),
            )
        )
        if not keep_alive:
            self.must_close = True

    def _answer(self, error: PierError, *, alias: bool = False, close: bool = False) -> None:
        """Refuse the request with ``error``; its body, if any, is read and dropped."""
        self.is_answered = True
        keep_alive = not close and not self.is_broken and self.keep_alive
        through = self.alias
        node = self.node
        self._send_or_queue(
            render_error(
                error,
                key=self.key,
                is_alias=alias,
                node=node.node if node is not None and through is not None else None,
                keep_alive=keep_alive,
                http11=self.http11,
                headers=self._request_id()
                if through is None
                else through.header_lines(self._request_id()),
            )
        )
        stats = node.stats if node is not None else self.gateway.metrics.unrouted
        stats.record(error.http_status, None)
        if through is not None and through.leg is not None:
            through.leg.stats.record(error.http_status, None)
        if not keep_alive:
            self.must_close = True
            if not self.is_broken:
                self.gateway.loop.call_later(LINGER_S, self._linger_over)

    def _send_or_queue(self, response: bytes) -> None:
        if self.current is None and not self.queue:
            self.output.write(response)
        else:
            self.queue.append(response)

    def _linger_over(self) -> None:
        if not self.output.is_closed:
            self.transport.close()
