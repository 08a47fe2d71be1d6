"""Health probes against real servers on 127.0.0.1: HTTP, TCP and the gRPC health protocol."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from pier.controller.observe import ProbeWindow
from pier.controller.probes import Probe
from pier.domain.specs import HealthCheck


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def window_after(
    probe: Probe, predicate: Callable[[ProbeWindow], bool], timeout_s: float = 5.0
) -> ProbeWindow:
    for _ in range(int(timeout_s / 0.02)):
        if predicate(probe.window):
            return probe.window
        await asyncio.sleep(0.02)
    raise AssertionError(f"probe window never matched: {probe.window}")


@pytest.fixture
async def grpc_health_server() -> AsyncIterator[tuple[int, health.aio.HealthServicer]]:
    port = free_port()
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    yield port, servicer
    await server.stop(grace=None)


async def test_grpc_probe_follows_the_serving_status(
    grpc_health_server: tuple[int, health.aio.HealthServicer],
) -> None:
    port, servicer = grpc_health_server
    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    await servicer.set("pier.Echo", serving)
    probe = Probe(
        f"http://127.0.0.1:{port}",
        HealthCheck(protocol="grpc", path="pier.Echo", interval_s=0.05),
    )
    probe.start()
    try:
        passing = await window_after(probe, lambda w: w.passes >= 2)
        assert passing.connected and passing.answered
        await servicer.set("pier.Echo", not_serving)
        failing = await window_after(probe, lambda w: w.failures >= 2)
        assert "NOT_SERVING" in (failing.last_error or "")
    finally:
        await probe.stop()


async def test_grpc_probe_of_an_unknown_service_fails(
    grpc_health_server: tuple[int, health.aio.HealthServicer],
) -> None:
    port, _ = grpc_health_server
    probe = Probe(
        f"http://127.0.0.1:{port}", HealthCheck(protocol="grpc", path="nope", interval_s=0.05)
    )
    probe.start()
    try:
        failing = await window_after(probe, lambda w: w.failures >= 1)
        assert "NOT_FOUND" in (failing.last_error or "")
    finally:
        await probe.stop()


async def test_tcp_probe_passes_while_the_port_accepts() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = Probe(f"http://127.0.0.1:{port}", HealthCheck(protocol="tcp", interval_s=0.05))
    probe.start()
    try:
        await window_after(probe, lambda w: w.passes >= 1)
        server.close()
        await server.wait_closed()
        failing = await window_after(probe, lambda w: w.failures >= 1)
        assert not failing.passes
    finally:
        await probe.stop()


async def test_a_probe_that_raises_counts_a_failure_retries_and_recovers_fake_connection() -> None:
    """A connection that raises something unexpected (a fake standing in for a bug or a
    strange endpoint): the probe task survives, backs off, and passes again."""
    raised: list[str] = []

    class Raising:
        def __init__(self, host: str, port: int, path: str) -> None:
            self.path = path

        async def get(self, timeout_s: float) -> int:
            if len(raised) < 4:
                raised.append(self.path)
                raise RuntimeError("unexpected")
            return 200

        def close(self) -> None:
            pass

    probe = Probe(
        "http://127.0.0.1:1", HealthCheck(path="/healthz", interval_s=0.01), connect=Raising
    )
    probe.start()
    try:
        failing = await window_after(probe, lambda w: w.unexpected_error is not None)
        assert failing.failures >= 1 and not failing.passes
        assert "RuntimeError: unexpected" in (failing.last_error or "")
        passing = await window_after(probe, lambda w: w.passes >= 1)
        assert passing.unexpected_error is None
        assert passing.checks >= 5 and len(raised) == 4  # four raised, then it passed
    finally:
        await probe.stop()


async def test_http_probe_keeps_one_connection_and_follows_the_status() -> None:
    """Checks reuse one kept-alive connection; a connection the instance closes after an
    answer is opened again; a 503 fails the check."""
    connections: list[int] = []
    answers = {"status": b"200 OK", "close": b""}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                await answer(reader, writer)
        finally:  # also when the test's loop ends first and cancels this handler
            writer.close()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readuntil(b"\r\n\r\n")).startswith(b"GET /ready "):
            writer.write(b"HTTP/1.1 %s\r\nContent-Length: 2\r\n%s\r\nok"
                         % (answers["status"], answers["close"]))  # fmt: skip
            await writer.drain()
            if answers["close"]:
                break

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = Probe(f"http://127.0.0.1:{port}", HealthCheck(path="/ready", interval_s=0.02))
    probe.start()
    try:
        await window_after(probe, lambda w: w.passes >= 5)
        assert len(connections) == 1
        answers["close"] = b"Connection: close\r\n"
        checks = probe.window.checks  # one more may be answered already, kept alive
        await window_after(probe, lambda w: w.checks >= checks + 4)
        assert len(connections) >= 3 and probe.window.passes >= 3
        answers["status"] = b"503 Service Unavailable"
        failing = await window_after(probe, lambda w: w.failures >= 1)
        assert failing.answered and "answered 503" in (failing.last_error or "")
    finally:
        await probe.stop()
        server.close()
