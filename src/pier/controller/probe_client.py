"""A light HTTP/1.1 client for the controller's small GETs of instances: health checks,
over one kept-alive connection per instance, and one-off reads (a model server's
statistics).

A health check is one small GET every few seconds per instance; with hundreds of
instances a general client (httpx: a pool, a request and response object per call,
header models) costs more than the checks themselves. Here a probe keeps one connection
to its instance, writes a request made once, and parses only the status line and the
framing of the answer with httptools; the body is read and dropped. A connection the
instance closes (or that fails in any way) is opened again on the next check.

``fetch`` reads a body too, bounded, on a connection of its own closed after: the reads
it serves are rare per instance (an instance's first, and one per sample while it
serves), so no connection is kept open for them.
"""

from __future__ import annotations

import asyncio
import contextlib

import httptools


class CannotConnect(OSError):
    """The instance refused the connection (or could not be reached)."""


class BadAnswer(Exception):
    """The instance's answer was not HTTP/1.1 (named by httptools' reason)."""


class _Answer:
    """httptools callbacks: the answer is complete once ``done`` is set. With
    ``max_body_bytes``, the body is kept, up to that many bytes (BadAnswer beyond)."""

    def __init__(self, max_body_bytes: int | None = None) -> None:
        self.done = False
        self.keep_alive = False
        self.parser = httptools.HttpResponseParser(self)
        self._max_body_bytes = max_body_bytes
        self.body = bytearray()

    def on_headers_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()  # only known until the end

    def on_body(self, data: bytes) -> None:
        if self._max_body_bytes is None:
            return
        self.body += data
        if len(self.body) > self._max_body_bytes:
            raise BadAnswer(f"a body over {self._max_body_bytes} bytes")

    def on_message_complete(self) -> None:
        self.done = True


async def fetch(
    host: str, port: int, path: str, *, timeout_s: float, max_body_bytes: int
) -> tuple[int, bytes]:
    """One GET on a connection of its own: the status code and the body, within
    ``timeout_s``. CannotConnect: nothing accepts; TimeoutError, BadAnswer (a body over
    ``max_body_bytes`` too), OSError: it accepted but did not answer well."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: pier\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")
    async with asyncio.timeout(timeout_s):
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            raise CannotConnect(exc.errno, exc.strerror or "refused") from None
        try:
            writer.write(request)
            answer = _Answer(max_body_bytes)
            await _read_answer(reader, answer)
            return int(answer.parser.get_status_code()), bytes(answer.body)
        finally:
            writer.close()


async def _read_answer(reader: asyncio.StreamReader, answer: _Answer) -> None:
    while not answer.done:
        data = await reader.read(65536)
        if not data:
            raise BadAnswer("the connection closed before the answer ended")
        try:
            answer.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            raise (cause if isinstance(cause, BadAnswer) else BadAnswer(str(exc))) from None


class HealthConnection:
    """GETs of one path on one instance, over a connection kept between them."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self._address = (host, port)
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: pier-health\r\n\r\n"
        ).encode("latin-1")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, timeout_s: float) -> int:
        """The status code the instance answers the GET with, within ``timeout_s``.
        CannotConnect: nothing accepts; TimeoutError, BadAnswer, OSError: it accepted
        but did not answer well (the connection is closed)."""
        try:
            async with asyncio.timeout(timeout_s):
                return await self._get()
        except BaseException:
            self.close()
            raise

    async def _get(self) -> int:
        reused = self._writer is not None
        reader, writer = await self._connection()
        writer.write(self._request)
        answer = _Answer()
        parser = answer.parser
        started = False
        while not answer.done:
            data = await reader.read(65536)
            if not data and reused and not started:  # closed by the instance while idle
                self.close()
                return await self._get()
            if not data:
                raise BadAnswer("the connection closed before the answer ended")
            started = True
            try:
                parser.feed_data(data)
            except httptools.HttpParserError as exc:
                raise BadAnswer(str(exc)) from None
        if not answer.keep_alive:
            self.close()
        return int(parser.get_status_code())

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is not None and self._writer is not None:
            if not self._reader.at_eof():
                return self._reader, self._writer
            self.close()
        try:
            self._reader, self._writer = await asyncio.open_connection(*self._address)
        except OSError as exc:
            raise CannotConnect(exc.errno, exc.strerror or "refused") from None
        return self._reader, self._writer

    def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
