"""Body limits (413 before an instance sees the request, 502 for big responses),
whole-request timeouts (504) and nodes without Healthy instances (503)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

from gateway_processes import Gateway, Upstream

LIMIT = 16 * 2**20


def test_body_one_byte_over_16_mib_is_413_before_the_instance(
    gateway: Gateway, upstreams: dict[str, Upstream]
) -> None:
    seen = {name: u.count() for name, u in upstreams.items()}
    with gateway.client() as client:
        response = client.post("/default/nodes/echo/infer", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    error = response.json()["error"]
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
    assert response.json()["error"]["node"] == "small"
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
    error = response.json()["error"]
    assert error["code"] == "response_too_large"
    assert error["node"] == "small"
    assert "1000" in error["message"]
    assert fits.status_code == 200
    assert len(fits.content) == 1000


def test_chunked_response_over_the_limit_is_cut_off(gateway: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
        s.sendall(b"GET /default/nodes/small/chunked?n=5000&parts=10 HTTP/1.1\r\nhost: x\r\n\r\n")
        received = b""
        while chunk := s.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200")
    assert not received.endswith(b"0\r\n\r\n")  # the body never completes


def test_slow_instance_is_504_after_the_node_timeout(gateway: Gateway) -> None:
    started = time.monotonic()
    with gateway.client() as client:
        response = client.get("/default/nodes/slow/sleep?s=3")
    elapsed = time.monotonic() - started
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "upstream_timeout"
    assert error["node"] == "slow"
    assert 0.4 < elapsed < 2.0


def test_node_without_instances_is_503_after_a_short_wait(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.get("/default/nodes/empty/x")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "no_healthy_instance"
    assert error["node"] == "empty"
