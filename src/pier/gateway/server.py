"""The client side: an asyncio Protocol parsing requests with httptools.

The route, the token and the body limit are checked as soon as the headers are parsed,
so a refused request never waits for its body. Requests are answered in order; a client
that pipelines gets its requests forwarded one after the other.

The callbacks do little on purpose: a header the gateway does not act on is queued as
four slices for one join; the request line, Host and hop-by-hop headers are rebuilt.
(Reading whole requests from the raw bytes instead was measured: several C-level
searches per request cost more than the callbacks they replace.)
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import httptools
import orjson
import structlog

from pier.domain.errors import AliasNotFound, BodyTooLarge, NodeNotFound, PierError, Unauthorized
from pier.gateway import wire
from pier.gateway.errors import BadRequest, NoRoute, render_error
from pier.gateway.forward import Exchange
from pier.gateway.limits import LINGER_S
from pier.gateway.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from pier.gateway.routes import match_headers, match_path, split_key

if TYPE_CHECKING:
    from pier.gateway.app import Gateway
    from pier.gateway.routes import NodeTarget

log = structlog.get_logger("pier.gateway")
_HEADERS: Final = wire.REQUEST_HEADERS
_HEADERS_LOWER: Final = wire.REQUEST_HEADERS_LOWER
_CRLF: Final = b"\r\n"


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
        "content_length",
        "current",
        "expects_continue",
        "gateway",
        "has_body",
        "headers",
        "http11",
        "is_answered",
        "is_broken",
        "is_closed",
        "is_version_known",
        "keep_alive",
        "key",
        "limit",
        "must_close",
        "node",
        "node_id",
        "parser",
        "project_id",
        "queue",
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
    limit: int
    key: bytes | None
    node: NodeTarget | None
    alias: str | None
    target: bytes

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None
        self.current: Exchange | None = None
        self.queue: deque[Exchange | bytes] = deque()
        self.is_closed = False
        self.is_broken = False
        self.must_close = False
        self.http11 = True
        self.is_version_known = False
        self.keep_alive = True
        self.activity = 0
        self.activity_seen = -1
        self._reset()

    # -- connection -------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.gateway.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_closed = True
        self.gateway.connections.discard(self)
        self.queue.clear()
        current = self.current
        if current is not None:
            self.current = None
            current.abandon()

    def data_received(self, data: bytes) -> None:
        self.activity += 1
        if self.is_broken:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            log.exception("request handling failed")
            self.cut()
        except httptools.HttpParserUpgrade:
            self._refuse_input(BadRequest("protocol upgrades are not supported"))
        except httptools.HttpParserError as e:
            self._refuse_input(BadRequest(f"invalid HTTP request: {e}"))

    def _refuse_input(self, error: PierError) -> None:
        self.is_broken = True
        self.key = None
        self.node = None
        self._answer(error)
        self.close_when_idle()

    def pause_writing(self) -> None:
        current = self.current
        if current is not None and current.conn is not None:
            current.conn.pause()

    def resume_writing(self) -> None:
        current = self.current
        if current is not None and current.conn is not None:
            current.conn.resume()

    def write(self, data: bytes) -> None:
        if not self.is_closed:
            self.transport.write(data)

    def cut(self) -> None:
        """End the connection at once: a response already under way cannot be completed."""
        if not self.is_closed:
            self.is_closed = True
            self.transport.abort()

    def close_if_quiet(self) -> None:
        """Close a connection with nothing owed that received nothing since the last call
        (the keep-alive timeout, also for clients that stall halfway through a head)."""
        if self.current is None and not self.queue and self.activity == self.activity_seen:
            self.close_when_idle()
        self.activity_seen = self.activity

    def close_when_idle(self) -> None:
        """Close now if no response is owed, else after the last one."""
        self.must_close = True
        if self.current is None and not self.queue and not self.is_closed:
            self.transport.close()

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
                self.write(item)
            else:
                self.current = item
                item.start()
                return
        if self.must_close and not self.is_closed:
            self.transport.close()

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
        self.limit = self.gateway.max_body_bytes
        self.key = None
        self.node = None
        self.alias = None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        kind = _HEADERS.get(name)
        if kind is None:
            kind = _HEADERS_LOWER.get(name.lower(), wire.FORWARD)
        if kind == wire.FORWARD:
            self.headers += (_CRLF, name, b": ", value)
        elif kind == wire.DROP:
            pass
        elif kind == wire.CONTENT_LENGTH:
            self.content_length = int(value)
            self.has_body = True
            self.headers += (_CRLF, name, b": ", value)
        elif kind == wire.AUTHORIZATION:
            self.authorization = value
        elif kind == wire.TRANSFER_ENCODING:
            self.has_body = True
        elif kind == wire.EXPECT:
            self.expects_continue = value.lower() == b"100-continue"
        else:
            self._routing_header(kind, value)
            self.headers += (_CRLF, name, b": ", value)

    def _routing_header(self, kind: int, value: bytes) -> None:
        if kind == wire.NODE_ID:
            self.node_id = value
        elif kind == wire.NODE_ALIAS:
            self.alias_id = value
        elif kind == wire.PROJECT or self.project_id is None:
            self.project_id = value.strip()

    def on_headers_complete(self) -> None:
        parser = self.parser
        if not self.is_version_known:  # the first request tells (HTTP/1.0: no chunked bodies)
            self.http11 = parser.get_http_version() == "1.1"
            self.is_version_known = True
        self.keep_alive = parser.should_keep_alive()
        url = self.url
        if self.node_id is not None or self.alias_id is not None:
            match = match_headers(url, self.node_id, self.alias_id, self.project_id)
        else:
            match = match_path(url)
        if match is None:
            self._answer_gateway_path(url)
            return
        is_alias, key, target = match
        self.key = key
        self.target = target
        router = self.gateway.router
        node: NodeTarget | None
        if is_alias:
            alias = router.aliases.get(key)
            if alias is None:
                self._answer_unknown(AliasNotFound(*split_key(key)), alias=True)
                return
            node = alias.pick()
            is_public = alias.is_public
            self.alias = alias.alias
        else:
            node = router.nodes.get(key)
            if node is None:
                project, name = split_key(key)
                known = router.node_names(project)
                self._answer_unknown(NodeNotFound(project, name, known=known))
                return
            is_public = node.is_public
        self.node = node
        if not is_public and not router.is_authorized(self.authorization):
            self._answer(Unauthorized(), alias=is_alias)
            return
        if node is not None:
            self.limit = node.max_body_bytes
        if self.content_length is not None and self.content_length > self.limit:
            self._answer(BodyTooLarge(self.limit), alias=is_alias, close=True)
            return
        if self.expects_continue and self.has_body:
            self.write(wire.CONTINUE)

    def _answer_unknown(self, error: PierError, *, alias: bool = False) -> None:
        """404 for a caller with a valid token; 401 for anyone else, who learns nothing
        about which nodes and aliases exist."""
        if self.gateway.router.is_authorized(self.authorization):
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
            return
        headers = self.headers
        if self.content_length is None and self.has_body:  # a chunked body, now counted
            headers.append(b"\r\ncontent-length: %d\r\n\r\n" % self.body_len)
        else:
            headers.append(b"\r\n\r\n")
        body = self.body
        exchange = Exchange(
            self,
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
        )
        self._reset()
        if self.current is None and not self.queue:
            self.current = exchange
            exchange.start()
        else:
            self.queue.append(exchange)

    # -- answers the gateway makes itself -------------------------------------------------

    def _answer_gateway_path(self, url: bytes) -> None:
        path = url.split(b"?", 1)[0]
        if path == b"/healthz":
            gateway = self.gateway
            status = {
                "status": "ok",
                "routes_version": gateway.router.version,
                "draining": gateway.upstreams.draining(),
            }
            if gateway.worker is not None:
                status["worker"] = gateway.worker.index
                status["workers"] = gateway.worker.urls
            body = orjson.dumps(status)
            self._respond(200, b"application/json", body)
        elif path == b"/metrics":
            self._respond(200, METRICS_CONTENT_TYPE, self.gateway.metrics.render())
        else:
            self._answer(NoRoute(url.decode("latin-1")))

    def _respond(self, status: int, content_type: bytes, body: bytes) -> None:
        self.is_answered = True
        keep_alive = self.keep_alive
        self._send_or_queue(
            wire.simple_response(
                status, content_type, body, keep_alive=keep_alive, http11=self.http11
            )
        )
        if not keep_alive:
            self.must_close = True

    def _answer(self, error: PierError, *, alias: bool = False, close: bool = False) -> None:
        """Refuse the request with ``error``; its body, if any, is read and dropped."""
        self.is_answered = True
        keep_alive = not close and not self.is_broken and self.keep_alive
        project = name = None
        if self.key is not None:
            project, name = split_key(self.key)
        self._send_or_queue(
            render_error(
                error,
                project=project,
                alias=name if alias else None,
                node=None if alias else name,
                keep_alive=keep_alive,
                http11=self.http11,
            )
        )
        stats = self.node.stats if self.node is not None else self.gateway.metrics.unrouted
        stats.record(error.http_status, None)
        if not keep_alive:
            self.must_close = True
            if not self.is_broken:
                self.gateway.loop.call_later(LINGER_S, self._linger_over)

    def _send_or_queue(self, response: bytes) -> None:
        if self.current is None and not self.queue:
            self.write(response)
        else:
            self.queue.append(response)

    def _linger_over(self) -> None:
        if not self.is_closed:
            self.transport.close()
