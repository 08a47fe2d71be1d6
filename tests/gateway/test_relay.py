"""What goes through: keep-alive, chunked responses, pipelined requests, headers."""

from __future__ import annotations

import socket

from gateway_processes import Gateway


def test_one_client_connection_carries_many_requests(gateway: Gateway) -> None:
    with gateway.client() as client:
        for i in range(50):
            response = client.post(f"/default/nodes/echo/n{i}", content=b"x" * i)
            assert response.json()["target"] == f"/n{i}"
            assert response.json()["body_bytes"] == i


def test_chunked_response_is_relayed_whole(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.get("/default/nodes/echo/chunked?n=100000&parts=7")
    assert response.status_code == 200
    assert response.content == b"y" * 100000
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["x-pier-instance"] in {"echo-0", "echo-1"}


def test_large_response_streams_through(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.get("/default/nodes/echo/big?n=5000000")
    assert response.status_code == 200
    assert len(response.content) == 5000000


def test_headers_are_forwarded_and_host_is_the_instance(gateway: Gateway) -> None:
    with gateway.client() as client:
        echo = client.get(
            "/default/nodes/echo/x", headers={"x-custom": "1", "connection": "keep-alive"}
        ).json()
    assert echo["headers"]["x-custom"] == "1"
    assert echo["headers"]["host"].startswith("127.0.0.1:")
    assert "connection" not in echo["headers"]


def test_pipelined_requests_are_answered_in_order(gateway: Gateway) -> None:
    request = b"GET /default/nodes/echo/p%d HTTP/1.1\r\nhost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
        s.sendall(b"".join(request % i for i in range(3)))
        received = b""
        while received.count(b"HTTP/1.1 200") < 3 or not received.endswith(b"}"):
            received += s.recv(65536)
    targets = [part.split(b'"', 1)[0] for part in received.split(b'"target": "')[1:]]
    assert targets == [b"/p0", b"/p1", b"/p2"]


def test_http10_client_gets_the_connection_closed(gateway: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
        s.sendall(b"GET /default/nodes/echo/chunked?n=10&parts=2 HTTP/1.0\r\n\r\n")
        received = b""
        while chunk := s.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding" not in head.lower()
    assert body == b"y" * 10


def test_malformed_request_is_400(gateway: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as s:
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        received = s.recv(65536)
    assert received.startswith(b"HTTP/1.1 400")
    assert b'"bad_request"' in received
