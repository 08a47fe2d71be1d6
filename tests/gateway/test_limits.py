"""Body limits (413 before an instance sees the request, 502 for big responses),
whole-request timeouts (504) and nodes without Healthy instances (503)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from gateway_processes import Gateway, Upstream

LIMIT = 16 * 2**20


def test_body_one_byte_over_16_mib_is_413_before_the_instance(
    gateway: Gateway, upstreams: dict[str, Upstream]
) -> None:
    seen = {name: u.count() for name, u in upstreams.items()}
    with gateway.client() as client:
        response = client.post("/default/nodes/echo/infer", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    error = response.json()
    assert error["code"] == "body_too_large"
    assert error["node"] == "echo"
    assert {name: u.count() for name, u in upstreams.items()} == seen


def test_body_of_exactly_16_mib_is_forwarded(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.post("/default/nodes/echo/infer", content=b"x" * LIMIT)
    assert response.status_code == 200
    assert response.json()["body_bytes"] == LIMIT


def test_chunked_body_over_the_node_limit_is_413(
    gateway: Gateway, upstreams: dict[str, Upstream]
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b"y" * 300

    seen = upstreams["a"].count()
    with gateway.client() as client:
        response = client.post("/default/nodes/small/infer", content=chunks())
    assert response.status_code == 413
    assert response.json()["node"] == "small"
    assert upstreams["a"].count() == seen


def test_chunked_body_under_the_limit_is_forwarded_with_a_length(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.post("/default/nodes/small/infer", content=iter([b"a" * 300] * 3))
    assert response.status_code == 200
    echo = response.json()
    assert echo["body_bytes"] == 900
    assert echo["headers"]["content-length"] == "900"
    assert "transfer-encoding" not in echo["headers"]


def test_response_over_the_limit_is_502_json(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.get("/default/nodes/small/big?n=1001")
        fits = client.get("/default/nodes/small/big?n=1000")
    assert response.status_code == 502
    error = response.json()
    assert error["code"] == "response_too_large"
    assert error["node"] == "small"
    assert "1000" in error["error"]
    assert fits.status_code == 200
    assert len(fits.content) == 1000


def read_until_closed(gateway: Gateway, request: bytes) -> tuple[bytes, bool]:
    """Send ``request`` on a connection of its own and read until the gateway ends it:
    what came, and whether the connection was reset rather than closed."""
    received = b""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
        s.sendall(request)
        try:
            while chunk := s.recv(65536):
                received += chunk
        except ConnectionResetError:
            return received, True
    return received, False


def test_chunked_response_over_the_limit_is_cut_off(gateway: Gateway) -> None:
    received, _ = read_until_closed(
        gateway, b"GET /default/nodes/small/chunked?n=5000&parts=10 HTTP/1.1\r\nhost: x\r\n\r\n"
    )
    assert received.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding: chunked" in received.lower()
    assert not received.endswith(b"0\r\n\r\n")  # the body never completes


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /default/nodes/small/unbounded?n=5000&parts=10 HTTP/1.1",
        b"GET /default/nodes/small/chunked?n=5000&parts=10 HTTP/1.0",  # relayed unchunked
    ],
)
def test_response_over_the_limit_delimited_by_the_close_is_reset(
    gateway: Gateway, request_line: bytes
) -> None:
    """A body that ends where the connection ends would look complete if the gateway
    closed it: the client is reset instead."""
    received, is_reset = read_until_closed(gateway, request_line + b"\r\nhost: x\r\n\r\n")
    assert received.startswith(b"HTTP/1.1 200") or received == b""
    assert is_reset


def test_response_over_the_limit_delimited_by_the_close_is_502_before_its_head(
    gateway: Gateway,
) -> None:
    received, _ = read_until_closed(
        gateway, b"GET /default/nodes/small/unbounded?n=5000&parts=1 HTTP/1.1\r\nhost: x\r\n\r\n"
    )
    assert received.startswith(b"HTTP/1.1 502")
    assert b'"response_too_large"' in received


def test_slow_instance_is_504_after_the_node_timeout(gateway: Gateway) -> None:
    started = time.monotonic()
    with gateway.client() as client:
        response = client.get("/default/nodes/slow/sleep?s=3")
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    error = response.json()
    assert error["code"] == "upstream_timeout"
    assert error["node"] == "slow"
    assert 0.4 < elapsed < 2.0


def test_node_without_instances_is_503_after_a_short_wait(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.get("/default/nodes/empty/x")
    assert response.status_code == 503
    error = response.json()
    assert error["code"] == "no_healthy_instance"
    assert error["node"] == "empty"
