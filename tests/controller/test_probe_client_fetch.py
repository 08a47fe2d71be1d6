"""The light client's one-off GET (a model server's statistics): the body read whole
whatever its framing, bounded, and a refusal or a broken answer told apart. Real HTTP
over 127.0.0.1 from a small asyncio server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from pier.controller.model_stats import ModelServerCounts, read_model_stats
from pier.controller.probe_client import BadAnswer, CannotConnect, fetch

Start = Callable[[bytes], Awaitable[int]]


@pytest.fixture
async def answering() -> AsyncIterator[Start]:
    """``await answering(answer)``: a port whose connections read a request head, get
    ``answer``, then are closed; the heads read are kept in ``heads``."""
    servers: list[asyncio.Server] = []

    async def start(answer: bytes) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                heads.append(await reader.readuntil(b"\r\n\r\n"))
                writer.write(answer)
                await writer.drain()
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


heads: list[bytes] = []


async def test_a_body_is_read_whole_with_a_length_or_chunked(answering: Start) -> None:
    sized = await answering(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
    chunked = await answering(
        b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n"
        b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"
    )
    for port, path, status in ((sized, "/x", 200), (chunked, "/y", 404)):
        answer = await fetch("127.0.0.1", port, path, timeout_s=5, max_body_bytes=5)
        assert answer == (status, b"hello")
    assert heads[-1].startswith(b"GET /y HTTP/1.1\r\n") and b"Connection: close" in heads[-1]


async def test_a_body_over_the_limit_is_refused(answering: Start) -> None:
    port = await answering(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhello!")
    with pytest.raises(BadAnswer, match="over 5 bytes"):
        await fetch("127.0.0.1", port, "/", timeout_s=5, max_body_bytes=5)


async def test_a_refusal_a_cut_answer_and_garbage_are_told_apart(answering: Start) -> None:
    with bound_not_listening() as refused, pytest.raises(CannotConnect):
        await fetch("127.0.0.1", refused, "/", timeout_s=5, max_body_bytes=5)
    cut = await answering(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhe")
    with pytest.raises(BadAnswer, match="closed before the answer ended"):
        await fetch("127.0.0.1", cut, "/", timeout_s=5, max_body_bytes=5)
    garbage = await answering(b"SMTP ready\r\n\r\n")
    with pytest.raises(BadAnswer):
        await fetch("127.0.0.1", garbage, "/", timeout_s=5, max_body_bytes=5)


async def test_model_statistics_are_read_and_anything_else_is_none(answering: Start) -> None:
    body = json.dumps({"model_stats": [
        {"inference_count": 7, "inference_stats": {"queue": {"count": 3, "ns": 2e9},
                                                   "compute_infer": {"count": 3, "ns": 1e9}}},
    ]}).encode()  # fmt: skip
    stats = await answering(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
    failing = await answering(b"HTTP/1.1 503 X\r\ncontent-length: 2\r\n\r\n{}")
    not_json = await answering(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nno")

    counts = await read_model_stats(f"http://127.0.0.1:{stats}", 5.0)
    assert counts == ModelServerCounts(7, 3, 2.0, 3, 1.0)
    assert heads[-1].startswith(b"GET /v2/models/stats HTTP/1.1\r\n")
    for port in (failing, not_json):
        assert await read_model_stats(f"http://127.0.0.1:{port}", 5.0) is None
    assert await read_model_stats("https://127.0.0.1:1", 5.0) is None  # not plain HTTP


@contextlib.contextmanager
def bound_not_listening() -> Iterator[int]:
    """A port bound and not listening: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port
