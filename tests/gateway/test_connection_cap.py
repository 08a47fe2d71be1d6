"""The cap on client connections (``--max-connections``, nginx's worker_connections): at
the cap a new connection takes the place of the one idle longest; with every connection
busy it is answered 503 and closed, and the gateway goes on serving."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import orjson
import pytest
from gateway_processes import Gateway, Upstream, node, table, wait_until

CAP = 3


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One response with a Content-Length body: (head, body)."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def served(port: int, path: bytes) -> socket.socket:
    """A keep-alive connection that had one request answered, idle now."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET %s HTTP/1.1\r\nhost: x\r\n\r\n" % path)
    head, _ = read_response(sock)
    assert head.startswith(b"HTTP/1.1 200"), head
    return sock


def is_closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.fixture
def capped(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> Iterator[Gateway]:
    routes = table(node("one", upstreams["a"].endpoint, timeout_s=30))
    yield gateway_factory(routes, "--max-connections", str(CAP))


def test_at_the_cap_a_new_connection_takes_the_place_of_the_one_idle_longest(
    capped: Gateway,
) -> None:
    idle = [served(capped.port, b"/default/nodes/one/x") for _ in range(CAP)]
    try:
        newcomer = served(capped.port, b"/default/nodes/one/y")
        newcomer.close()
        assert is_closed_by_peer(idle[0])
        for sock in idle[1:]:  # the others are still served on their connection
            sock.sendall(b"GET /default/nodes/one/z HTTP/1.1\r\nhost: x\r\n\r\n")
            assert read_response(sock)[0].startswith(b"HTTP/1.1 200")
    finally:
        for sock in idle:
            sock.close()


def test_with_every_connection_busy_a_new_one_gets_503_and_is_closed(
    capped: Gateway, upstreams: dict[str, Upstream]
) -> None:
    seen = upstreams["a"].count()
    busy = [socket.create_connection(("127.0.0.1", capped.port), timeout=10) for _ in range(CAP)]
    try:
        for sock in busy:
            sock.sendall(b"GET /default/nodes/one/sleep?s=2 HTTP/1.1\r\nhost: x\r\n\r\n")
        wait_until(lambda: upstreams["a"].count() == seen + CAP, what="every request forwarded")
        with socket.create_connection(("127.0.0.1", capped.port), timeout=10) as extra:
            extra.sendall(b"GET /default/nodes/one/x HTTP/1.1\r\nhost: x\r\n\r\n")
            head, body = read_response(extra)
            assert is_closed_by_peer(extra)
        assert head.startswith(b"HTTP/1.1 503")
        error = orjson.loads(body)["error"]
        assert error["code"] == "too_many_connections"
        assert "MAX_CONNECTIONS" in error["message"]
        for sock in busy:  # the busy ones are answered as if nothing happened
            assert read_response(sock)[0].startswith(b"HTTP/1.1 200")
    finally:
        for sock in busy:
            sock.close()
    with served(capped.port, b"/default/nodes/one/x"):  # and a connection has room again
        pass
