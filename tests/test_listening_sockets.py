"""Every TCP server pier runs answers without Nagle's delay on kept-alive connections.

asyncio turns Nagle off (TCP_NODELAY) on the connections it accepts only when the
listening socket names IPPROTO_TCP; a socket made with protocol 0 kept Nagle on, and a
small answer on a kept-alive connection then waited for the client's delayed ACK (40 ms
a request at the API). Each listener is checked on a connection its server accepts."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from pier.gateway.app import GatewayConfig, _own_socket, _shared_socket
from pier.modelserver.__main__ import bind_socket as model_server_socket
from pier.server import bind_socket as api_socket


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Accepted(asyncio.Protocol):
    def __init__(self, into: asyncio.Future[int]) -> None:
        self.into = into

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        self.into.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        transport.close()


LISTENERS: dict[str, Callable[[int], socket.socket]] = {
    "api": lambda port: api_socket("127.0.0.1", port, what="API"),
    "model server": lambda port: model_server_socket("127.0.0.1", port),
    "gateway": lambda port: _shared_socket(GatewayConfig(host="127.0.0.1", port=port)),
    "gateway worker": lambda _port: _own_socket(),
}


@pytest.mark.parametrize("name", LISTENERS)
async def test_accepted_connections_have_nagle_off(name: str) -> None:
    listener = LISTENERS[name](_free_port())
    loop = asyncio.get_running_loop()
    nodelay: asyncio.Future[int] = loop.create_future()
    server = await loop.create_server(lambda: _Accepted(nodelay), sock=listener)
    try:
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        try:
            assert await asyncio.wait_for(nodelay, 10) != 0
        finally:
            writer.close()
            await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
