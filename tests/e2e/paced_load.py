"""A bounded async client sending requests at a steady rate, to check that nothing fails
while pier re-points an alias underneath it.

Requests go out on a fixed schedule (``rate`` per second: the n-th is due at
``start + n / rate``, however long the answers take) over at most ``connections``
keep-alive connections; a request that would exceed that bound waits for one to free up
(so a slow pier lowers the rate instead of piling up requests). The client is plain
asyncio protocols with httptools parsing the answers on uvloop, in a thread of its own:
a general-purpose HTTP client costs so much per request that on a busy machine it, not
pier, set the rate. Each answer is kept with the time its request was sent, so a test can
look at the answers sent after a moment (an alias switch) only; ``rate_achieved`` says
what rate was held.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import httptools
import uvloop

from tests.conftest import PierProcess

TIMEOUT_S = 30.0
"""An answer that takes longer is a failure."""


@dataclass(frozen=True, slots=True)
class Answer:
    sent_at: float
    """time.monotonic() when the request was sent."""
    status: int | None
    """None: no HTTP answer (a connection error or a timeout)."""
    instance: str | None
    """The x-pier-instance header: which instance answered."""
    node: str | None
    """The x-pier-node header, once the gateway sends it."""
    error: str | None = None
    answered_at: float = 0.0
    """time.monotonic() when the answer (or the failure) came."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed by httptools."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[tuple[int, dict[bytes, bytes], bytes]] | None = None
        self.headers: dict[bytes, bytes] = {}
        self.body = b""
        self.is_open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.is_open = True

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"bad answer: {exc}")
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        if len(self.body) < 200:
            self.body += body

    def on_message_complete(self) -> None:
        answer, self.answer = self.answer, None
        if answer is not None and not answer.done():
            answer.set_result((self.parser.get_status_code(), self.headers, self.body))
        if not self.parser.should_keep_alive():
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_open = False
        self._fail(f"connection lost: {exc}")

    def _fail(self, why: str) -> None:
        answer, self.answer = self.answer, None
        if answer is not None and not answer.done():
            answer.set_exception(ConnectionError(why))

    def close(self) -> None:
        self.is_open = False
        if self.transport is not None:
            self.transport.close()

    async def get(self, request: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        self.headers, self.body = {}, b""
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)  # type: ignore[union-attr]  # connected
        async with asyncio.timeout(TIMEOUT_S):
            return await self.answer


@dataclass
class PacedLoad:
    pier: PierProcess
    path: str
    rate: float = 200.0
    connections: int = 16
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _began: float = 0.0
    _ended: float = 0.0

    def __enter__(self) -> PacedLoad:
        self._thread = threading.Thread(target=lambda: uvloop.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def run_for(self, seconds: float) -> None:
        """Keep the load going (from the test's thread) for ``seconds`` more."""
        time.sleep(seconds)

    def failures(self) -> list[Answer]:
        return [a for a in self.answers if a.status is None or not 200 <= a.status < 300]

    def sent_after(self, moment: float) -> list[Answer]:
        return [a for a in self.answers if a.sent_at > moment]

    def rate_achieved(self) -> float:
        """Requests answered per second over the time the load ran."""
        elapsed = (self._ended or time.monotonic()) - self._began
        return len(self.answers) / elapsed if elapsed > 0 else 0.0

    async def _run(self) -> None:
        port = self.pier.gateway_port
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {self.pier.token}\r\n\r\n"
        ).encode()
        idle: asyncio.Queue[_Connection | None] = asyncio.Queue()
        for _ in range(self.connections):
            idle.put_nowait(None)  # a connection to open when first needed
        pending: set[asyncio.Task[None]] = set()
        self._began = start = time.monotonic()
        sent = 0
        while not self._stop.is_set():
            due = start + sent / self.rate
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            conn = await idle.get()
            task = asyncio.create_task(self._one(conn, port, request, idle))
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
        await asyncio.gather(*pending)
        self._ended = time.monotonic()
        while not idle.empty():
            if (conn := idle.get_nowait()) is not None:
                conn.close()

    async def _one(
        self,
        conn: _Connection | None,
        port: int,
        request: bytes,
        idle: asyncio.Queue[_Connection | None],
    ) -> None:
        sent_at = time.monotonic()
        try:
            if conn is None or not conn.is_open:
                _, conn = await asyncio.get_running_loop().create_connection(
                    _Connection, "127.0.0.1", port
                )
            status, headers, body = await conn.get(request)
        except (OSError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            self.answers.append(Answer(sent_at, None, None, None, error, time.monotonic()))
            if conn is not None:
                conn.close()
            conn = None
        else:
            instance, node = headers.get(b"x-pier-instance"), headers.get(b"x-pier-node")
            self.answers.append(
                Answer(
                    sent_at, status, instance.decode() if instance else None,
                    node.decode() if node else None,
                    None if 200 <= status < 300 else body.decode(errors="replace"),
                    time.monotonic(),
                )
            )  # fmt: skip
        finally:
            idle.put_nowait(conn)
