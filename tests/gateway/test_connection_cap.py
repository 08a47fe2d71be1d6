"""The cap on client connections (``--max-connections``, nginx's worker_connections): at
the cap a new connection takes the place of the one idle longest; with every connection
busy it is answered 503 and closed, and the gateway goes on serving."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
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
        error = orjson.loads(body)
        assert error["code"] == "too_many_connections"
        assert "MAX_CONNECTIONS" in error["error"]
        for sock in busy:  # the busy ones are answered as if nothing happened
            assert read_response(sock)[0].startswith(b"HTTP/1.1 200")
    finally:
        for sock in busy:
            sock.close()
    with served(capped.port, b"/metrics") as sock:  # a connection has room again
        sock.sendall(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        figures = read_response(sock)[1]
    assert b"pier_gateway_client_connections_refused_total 1.0" in figures


FIT = """
import resource, sys
from pier.gateway.connections import fit_open_files
soft, hard = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
cap = fit_open_files(int(sys.argv[3]))
print(cap, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def fit(soft: int, hard: int, max_connections: int) -> tuple[int, int]:
    """(the cap, the soft open-files limit) after a gateway's start in a process whose
    limits were ``soft``/``hard``."""
    argv = [sys.executable, "-c", FIT, str(soft), str(hard), str(max_connections)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    return int(out[-2]), int(out[-1])


def test_the_open_files_limit_is_raised_to_the_hard_limit_at_start() -> None:
    hard = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 16384)  # RLIM_INFINITY is -1
    hard = 16384 if hard < 0 else hard
    assert fit(256, hard, 1000) == (min(1000, (hard - 512) // 2), hard)


def test_a_cap_the_hard_limit_cannot_hold_is_lowered_to_fit() -> None:
    cap, soft = fit(1024, 1024, 4096)
    assert soft == 1024
    assert cap >= 1 and 2 * cap + 512 <= 1024  # room left for instances and route sync
