"""A closed connection's memory is freed when it closes, not by a later garbage
collection: no reference cycle is left between a client connection, its exchanges, the
instance connections and their parsers. A gateway runs in this process (on uvloop, as
``python -m pier.gateway`` does) so that the collector can be asked what it frees."""

from __future__ import annotations

import asyncio
import gc
from collections import Counter

import uvloop
from gateway_processes import Upstream, node, table

from pier.gateway.app import Gateway, GatewayConfig
from pier.gateway.forward import Exchange
from pier.gateway.relay import UpstreamConnection
from pier.gateway.server import ClientConnection

ROUNDS = 20
REQUESTS = (
    b"GET /default/nodes/one/x HTTP/1.1\r\nhost: x\r\n\r\n",  # counted, keep-alive
    b"GET /default/nodes/one/chunked?n=3000&parts=3 HTTP/1.1\r\nhost: x\r\n\r\n",  # parsed
    b"GET /default/nodes/one/drop HTTP/1.1\r\nhost: x\r\n\r\n",  # 502 upstream_disconnected
    b"GET /default/nodes/small/chunked?n=5000&parts=5 HTTP/1.1\r\nhost: x\r\n\r\n",  # cut off
    b"GET /default/nodes/none/x HTTP/1.1\r\nhost: x\r\n\r\n",  # answered by the gateway
    b"GET /default/nodes/one/sleep?s=5 HTTP/1.1\r\nhost: x\r\n\r\n",  # client leaves first
)


async def one_client(port: int, request: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    try:
        async with asyncio.timeout(0.3):  # long enough for all but /sleep
            await reader.read(65536)
    except (TimeoutError, ConnectionError):
        pass
    writer.close()


def connection_objects() -> Counter[str]:
    kinds = (ClientConnection, Exchange, UpstreamConnection)
    return Counter(type(o).__name__ for o in gc.get_objects() if isinstance(o, kinds))


async def traffic(upstream: Upstream) -> Counter[str]:
    """Connections of every kind open and close; then the objects of theirs that only a
    garbage collection frees (with automatic collection off until then)."""
    loop = asyncio.get_running_loop()
    gateway = Gateway(GatewayConfig(), loop)
    gateway.apply(
        table(
            node("one", upstream.endpoint),
            node("small", upstream.endpoint, max_body_bytes=1000),
        )
    )
    server = await loop.create_server(gateway.accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sweep = asyncio.create_task(gateway.deadlines.run())
    try:
        for _ in range(ROUNDS):
            await asyncio.gather(*(one_client(port, request) for request in REQUESTS))
        async with asyncio.timeout(10):  # every client connection is closed on our side
            while True:
                if not (gateway.clients.open or gateway.clients.pending):
                    break
                await asyncio.sleep(0.01)
    finally:
        sweep.cancel()
        server.close()
        await server.wait_closed()
        gateway.upstreams.retire_all_but(())  # closes the pooled instance connections
        for _ in range(3):  # their transports finish closing before the loop does
            await asyncio.sleep(0)
    before = connection_objects()
    gc.collect()
    return before - connection_objects()


def test_closed_connections_leave_nothing_for_the_garbage_collector(
    upstreams: dict[str, Upstream],
) -> None:
    gc.collect()
    gc.disable()
    try:
        freed_by_the_collector = uvloop.run(traffic(upstreams["a"]))
    finally:
        gc.enable()
    assert freed_by_the_collector == Counter()
