"""The instance side: a keep-alive connection relaying one response at a time.

Two ways to relay a response:
  * counted, the common case: an HTTP/1.1 head with one Content-Length and no hop-by-hop
    header (what inference servers send). The head is found with one search, checked,
    gets ``x-pier-instance`` and ``x-request-id`` added and is forwarded byte for byte; the
    body is forwarded as read and counted down to zero. No parser callbacks, no
    re-serialisation: this is most of the gateway's speed.
  * parsed: everything else (chunked, close-delimited, interim 1xx, Connection headers,
    HTTP/1.0) goes through httptools' response parser, which validates every byte and
    says where the message ends; the head is rebuilt without hop-by-hop headers and a
    chunked body is re-chunked (decoded for an HTTP/1.0 client). A body delimited by the
    instance closing the connection is delimited by closing the client's too.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Final, Protocol

import httptools

from pier.domain.errors import PierError
from pier.gateway.errors import BadUpstreamResponse, ResponseTooLarge, UpstreamDisconnected
from pier.gateway.flow import ClientOutput
from pier.http import wire

MAX_HEAD_BYTES: Final = 64 * 1024
_CRLF: Final = b"\r\n"
_HTTP11_STATUS: Final = {b"HTTP/1.1 %d" % code: code for code in range(100, 1000)}
_NOT_COUNTED: Final = re.compile(
    rb"\r\n(?:connection|keep-alive|proxy-connection|te|trailer|upgrade|transfer-encoding"
    rb"|x-request-id)[ \t]*:"
)
"""A head with any of these goes to the parser (which replaces an instance's own
x-request-id with the gateway's). One regex search instead of seven ``in``
tests: ``needle in bytes`` first tries the needle as an integer and formats a TypeError
each time, which costs more than the search."""


class Exchange(Protocol):
    """The request whose response is relayed (``forward.Exchange``)."""

    @property
    def output(self) -> ClientOutput: ...
    @property
    def is_head(self) -> bool: ...
    @property
    def keep_alive(self) -> bool: ...
    @property
    def http11(self) -> bool: ...
    @property
    def response_headers(self) -> bytes:
        """The header lines the gateway adds to the response (``x-request-id``...)."""

    @property
    def limit(self) -> int:
        """Response body limit."""

    def close_client_after(self) -> None:
        """The response is delimited by a close: the client connection ends after it."""

    def finish(self, status: int, latency_s: float | None) -> None:
        """The response was relayed whole."""

    def fail(self, error: PierError) -> None:
        """Answer ``error`` instead (or cut the client off if the response had started);
        detaches and closes the instance connection."""


class Origin(Protocol):
    """The instance a connection goes to (``pool.Upstream``)."""

    @property
    def instance_id(self) -> str: ...
    @property
    def instance_header(self) -> bytes:
        """The ``x-pier-instance`` header line."""

    def put_idle(self, conn: UpstreamConnection) -> None:
        """Take back a connection whose response is complete (or close it)."""


_COUNTED_HEADS: Final[dict[bytes, tuple[int, int]]] = {}
"""Heads seen lately -> what ``_count_head`` said of them. An instance sends the same
head again and again (the same headers, often the same length), and a dictionary lookup
costs a fraction of the searches it saves."""
_COUNTED_HEADS_SIZE: Final = 512
_COUNTED_HEAD_MAX_BYTES: Final = 1024
"""Larger heads are not kept (the cache stays under a megabyte)."""


def _count_head(head: bytes) -> tuple[int, int]:
    """(status, Content-Length) of a response head that can be relayed counted, the
    length -1 if it is not a number; (0, 0) for one that needs the parser."""
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    status = _HTTP11_STATUS.get(head[:12], 0)
    if (
        status < 200
        or at < 0
        or _NOT_COUNTED.search(lower) is not None
        or lower.find(b"\r\ncontent-length:", at + 17) >= 0
    ):
        counted = (0, 0)
    else:
        try:
            counted = (status, int(head[at + 17 : lower.find(b"\r\n", at + 17)]))
        except ValueError:
            counted = (status, -1)
    if len(head) <= _COUNTED_HEAD_MAX_BYTES:
        if len(_COUNTED_HEADS) >= _COUNTED_HEADS_SIZE:
            _COUNTED_HEADS.clear()
        _COUNTED_HEADS[head] = counted
    return counted


class _Refused(Exception):
    """Raised in a parser callback after the exchange was failed, to stop parsing."""


class UpstreamConnection(asyncio.Protocol):
    """A keep-alive connection to one instance."""

    __slots__ = (
        "body_bytes",
        "clock",
        "exchange",
        "has_head",
        "has_relayed",
        "head_buf",
        "headers",
        "idle_since",
        "is_chunking",
        "is_complete",
        "is_eof_delimited",
        "is_open",
        "is_parsing",
        "is_paused",
        "is_reusable",
        "limit",
        "out",
        "output",
        "parser",
        "remaining",
        "sent_at",
        "status",
        "transport",
        "upstream",
    )

    def __init__(self, upstream: Origin, loop: asyncio.AbstractEventLoop) -> None:
        self.upstream = upstream
        self.clock = loop.time
        self.output: ClientOutput | None = None
        """Where the response being relayed goes."""
        self.sent_at = 0.0
        self.parser: Any = None
        self.transport: Any = None
        self.exchange: Exchange | None = None
        self.is_open = False
        self.is_paused = False
        self.idle_since = 0.0
        """Loop time of the connection's last response (or of its opening)."""
        self.limit = 0
        self.out: list[bytes] = []
        self._ready()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.is_open = True
        self.idle_since = self.clock()

    def _ready(self) -> None:
        """Reset the per-response state (after a response, so not on the way in)."""
        self.head_buf = b""
        self.has_head = False
        self.has_relayed = False
        self.status = 0
        self.remaining = 0
        self.body_bytes = 0
        self.is_parsing = False
        self.is_chunking = False
        self.is_eof_delimited = False
        self.is_complete = False
        self.is_reusable = False
        self.headers: list[tuple[bytes, bytes]] = []

    def send(self, exchange: Exchange, request: bytes, now: float) -> None:
        """Write ``request`` (whole) and relay its response to ``exchange``."""
        self.exchange = exchange
        self.limit = exchange.limit
        self.sent_at = now
        output = self.output = exchange.output
        output.attach(self)
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            self.close()  # nothing was asked: the connection is out of step
        elif self.remaining:
            self._count(exchange, data)
        elif self.is_parsing:
            self._parse(exchange, data)
        else:
            if self.head_buf:
                data = self.head_buf + data
                self.head_buf = b""
            self._read_head(exchange, data)

    def _read_head(self, exchange: Exchange, data: bytes) -> None:
        """Count the response if its head allows it, else hand it to the parser."""
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if data.find(b"\n\n") >= 0:  # a head ending in bare LFs (CGI): the parser copes
                self.is_parsing = True
                self._parse(exchange, data)
            elif len(data) > MAX_HEAD_BYTES:
                self._fail(exchange, BadUpstreamResponse(self.upstream.instance_id, "head"))
            else:
                self.head_buf = data
            return
        head = data[: end + 2]
        counted = _COUNTED_HEADS.get(head)
        if counted is None:
            counted = _count_head(head)
        status, length = counted
        if status == 0 or exchange.is_head:
            self.is_parsing = True
            self._parse(exchange, data)
            return
        if not 0 <= length <= self.limit:
            self._refuse_length(exchange, length)
            return
        self.status = status
        remaining = length + end + 4 - len(data)
        if remaining < 0:  # more than Content-Length: relay what was promised, then close
            data = data[:remaining]
        if exchange.keep_alive and exchange.http11:
            connection = b""
        else:
            connection = wire.connection_header(
                keep_alive=exchange.keep_alive, http11=exchange.http11
            )
        # the head as it came, x-pier-instance and x-request-id added before the blank line,
        # then the body
        added = exchange.response_headers
        body = data[end + 2 :]
        relayed = b"".join((head, self.upstream.instance_header, added, connection, body))
        if remaining > 0:
            self.has_head = self.is_reusable = True
            self.remaining = remaining
            self.out.append(relayed)
            self._flush(exchange)
        else:  # the whole response in one read, the common case
            exchange.output.write(relayed)
            self._done(exchange, remaining == 0)

    def _count(self, exchange: Exchange, data: bytes) -> None:
        """Relay part of a counted body; complete the exchange when it is all there."""
        remaining = self.remaining - len(data)
        if remaining < 0:  # more than Content-Length: relay what was promised, then close
            data = data[:remaining]
            self.is_reusable = False
        self.out.append(data)
        if remaining > 0:
            self.remaining = remaining
            self._flush(exchange)
        else:
            self.remaining = 0
            self._complete(exchange)

    def _refuse_length(self, exchange: Exchange, length: int) -> None:
        if length > self.limit:
            self._fail(exchange, ResponseTooLarge(self.limit))
        else:
            instance = self.upstream.instance_id
            self._fail(exchange, BadUpstreamResponse(instance, "invalid content-length"))

    # -- the parsed path: httptools delimits the response ---------------------------------

    def _parse(self, exchange: Exchange, data: bytes) -> None:
        if self.parser is None:
            self.parser = httptools.HttpResponseParser(self)
            # Servers such as busybox httpd end CGI header lines with a bare LF; nginx
            # accepts that from upstreams too. Requests from clients stay strict.
            self.parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            if self.exchange is exchange:  # else a callback refused the response already
                self._fail(exchange, BadUpstreamResponse(self.upstream.instance_id, str(e)))
            return
        if self.body_bytes > self.limit:
            self._fail(exchange, ResponseTooLarge(self.limit))
        elif self.is_complete:
            self._complete(exchange)
        elif self.out:
            self._flush(exchange)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        exchange: Exchange = self.exchange  # type: ignore[assignment]
        status = self.parser.get_status_code()
        headers = self.headers
        self.headers = []
        if status < 200:
            return  # interim (100 Continue): not relayed
        length: int | None = None
        is_chunked = False
        kept: list[bytes] = [wire.status_line(status)]
        for name, value in headers:
            lname = name.lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"transfer-encoding":
                is_chunked = value.lower().find(b"chunked") >= 0
                continue
            elif lname in wire.HOP_BY_HOP or lname == b"x-request-id":
                continue
            kept += (name, b": ", value, _CRLF)
        if length is not None and length > self.limit:
            self._refuse_length(exchange, length)
            raise _Refused
        has_body = not exchange.is_head and status not in wire.NO_BODY_STATUSES
        if has_body and length is None:
            self.is_chunking = is_chunked and exchange.http11
            self.is_eof_delimited = not is_chunked
            if not self.is_chunking:
                exchange.close_client_after()  # the client reads the body until the close
        self.status = status
        kept += (
            self.upstream.instance_header,
            exchange.response_headers,
            wire.CHUNKED if self.is_chunking else b"",
            wire.connection_header(keep_alive=exchange.keep_alive, http11=exchange.http11),
            _CRLF,
        )
        self.out.append(b"".join(kept))
        self.has_head = True
        if exchange.is_head:
            self.is_complete = True  # no body follows, whatever the head says

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.is_chunking:
            self.out += (b"%x\r\n" % len(body), body, _CRLF)
        else:
            self.out.append(body)

    def on_message_complete(self) -> None:
        if not self.has_head:
            return  # the end of an interim response
        if self.is_chunking:
            self.out.append(wire.LAST_CHUNK)
        self.is_complete = True
        exchange = self.exchange
        is_head = exchange is not None and exchange.is_head
        self.is_reusable = self.parser.should_keep_alive() and not is_head

    def _flush(self, exchange: Exchange) -> None:
        self.has_relayed = True
        exchange.output.writelines(self.out)
        self.out.clear()

    def _complete(self, exchange: Exchange) -> None:
        out = self.out
        exchange.output.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()
        self._done(exchange, self.is_reusable)

    def _done(self, exchange: Exchange, is_reusable: bool) -> None:
        """The response was relayed: pool or close the connection, finish the exchange."""
        self._release_output()
        now = self.clock()
        status = self.status
        if is_reusable and self.is_open:
            if self.is_parsing:
                self._ready()
            else:
                self.has_head = self.is_reusable = self.has_relayed = False
            self.idle_since = now
            self.upstream.put_idle(self)
        else:
            self.close()
        exchange.finish(status, now - self.sent_at)

    def _release_output(self) -> None:
        """No exchange any more: stop following the client's pauses."""
        self.exchange = None
        output = self.output
        if output is not None:
            self.output = None
            output.detach(self)
        if self.is_paused:
            self.resume()

    def _fail(self, exchange: Exchange, error: PierError) -> None:
        self.out.clear()
        exchange.fail(error)  # detaches and closes this connection

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_open = False
        self.parser = None  # it refers back to this connection: no cycle left for the gc
        exchange = self.exchange
        if exchange is None:
            return
        self._release_output()
        if self.is_eof_delimited:
            if self.out:
                self._flush(exchange)
            exchange.finish(self.status, self.clock() - self.sent_at)
        else:
            self.out.clear()
            exchange.fail(UpstreamDisconnected(self.upstream.instance_id))

    def pause(self) -> None:
        """The client reads slower than the instance writes: stop reading."""
        if self.is_open and not self.is_paused:
            self.is_paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.is_open and self.is_paused:
            self.is_paused = False
            self.transport.resume_reading()

    def detach(self) -> None:
        """Forget the exchange and close: the rest of its response will not be read."""
        self._release_output()
        self.close()

    def close(self) -> None:
        self.is_open = False
        if self.transport is not None:
            self.transport.close()
