"""Request heads from hostile clients: sizes (414/431), versions (505), Host and routing
headers sent twice (400), upgrades (501) and CONNECT (405). Each refusal is one JSON
answer, and the connection is closed after it."""

from __future__ import annotations

import pytest
from gateway_processes import Gateway, Upstream
from raw_http import RawClient, RawResponse, Sender

LINE_LIMIT = 8 * 1024
HEADER_LIMIT = 32 * 1024


def refused(gateway: Gateway, request: bytes) -> RawResponse:
    """The one answer to ``request``; the gateway closes the connection after it."""
    with RawClient(gateway.port) as client:
        client.send(request)
        response = client.read_response()
        assert client.is_closed_after()
    assert response.header("connection") == "close"
    assert response.header("x-request-id")
    return response


def answered(gateway: Gateway, request: bytes) -> RawResponse:
    with RawClient(gateway.port) as client:
        client.send(request)
        return client.read_response()


def request_line(length: int) -> bytes:
    """``GET /default/nodes/echo/aaa... HTTP/1.1`` of exactly ``length`` bytes (no CRLF)."""
    start = b"GET /default/nodes/echo/"
    end = b" HTTP/1.1"
    return start + b"a" * (length - len(start) - len(end)) + end


def test_request_line_of_8_kib_is_forwarded_one_byte_more_is_414(gateway: Gateway) -> None:
    fits = answered(gateway, request_line(LINE_LIMIT) + b"\r\nhost: x\r\n\r\n")
    assert fits.status == 200
    response = refused(gateway, request_line(LINE_LIMIT + 1) + b"\r\nhost: x\r\n\r\n")
    assert response.status == 414
    assert response.json()["code"] == "request_line_too_long"
    assert "max_request_line_bytes" in response.json()["error"]


def test_request_line_that_never_ends_is_414(gateway: Gateway) -> None:
    with RawClient(gateway.port) as client:
        sender = Sender(client.sock, b"GET /", b"a" * 65536, 64 * 2**20)
        sender.start()
        response = client.read_response()
        assert client.is_closed_after()
    assert response.status == 414


def headers_of(count: int, size: int) -> bytes:
    """``count`` header lines (with Host) of ``size`` bytes each, CRLF included."""
    lines = [b"host: " + b"x" * (size - 8) + b"\r\n"]
    lines += [b"x-h%03d: " % i + b"v" * (size - 10) + b"\r\n" for i in range(count - 1)]
    assert all(len(line) == size for line in lines)
    return b"GET /default/nodes/echo/h HTTP/1.1\r\n" + b"".join(lines) + b"\r\n"


def test_headers_of_32_kib_are_forwarded_more_is_431(gateway: Gateway) -> None:
    assert answered(gateway, headers_of(32, 1024)).status == 200
    response = refused(gateway, headers_of(32, 1025))
    assert response.status == 431
    error = response.json()
    assert error["code"] == "headers_too_large"
    assert "max_header_bytes" in error["error"]


def test_100_headers_are_forwarded_101_are_431(gateway: Gateway) -> None:
    assert answered(gateway, headers_of(100, 20)).status == 200
    response = refused(gateway, headers_of(101, 20))
    assert response.status == 431
    assert "max_headers" in response.json()["error"]


def test_head_that_never_ends_is_431(gateway: Gateway) -> None:
    """One header line of 64 MiB: refused once the bytes fed for it pass the limits."""
    first = b"GET /default/nodes/echo/x HTTP/1.1\r\nhost: x\r\nx-big: "
    with RawClient(gateway.port) as client:
        sender = Sender(client.sock, first, b"v" * 65536, 64 * 2**20)
        sender.start()
        response = client.read_response()
        assert client.is_closed_after()
    assert response.status == 431
    assert response.json()["code"] == "headers_too_large"


def test_http11_request_without_host_is_400(gateway: Gateway) -> None:
    response = refused(gateway, b"GET /default/nodes/echo/x HTTP/1.1\r\n\r\n")
    assert response.status == 400
    assert "Host" in response.json()["error"]


def test_http10_request_without_host_is_forwarded(gateway: Gateway) -> None:
    assert answered(gateway, b"GET /default/nodes/echo/x HTTP/1.0\r\n\r\n").status == 200


@pytest.mark.parametrize(
    "line", [b"GET / HTTP/2.0", b"GET / HTTP/0.9", b"GET / HTTP/1.2", b"GET / HTTP/3.0"]
)
def test_versions_other_than_1_0_and_1_1_are_505(gateway: Gateway, line: bytes) -> None:
    response = refused(gateway, line + b"\r\nhost: x\r\n\r\n")
    assert response.status == 505
    assert response.json()["code"] == "http_version_not_supported"


@pytest.mark.parametrize("name", ["Authorization", "Host", "x-node-id", "x-node-alias"])
def test_routing_header_sent_twice_is_400_naming_it(gateway: Gateway, name: str) -> None:
    twice = b"%s: one\r\n%s: two\r\n" % (name.encode(), name.encode())
    host = b"" if name == "Host" else b"host: x\r\n"
    response = refused(gateway, b"GET /default/nodes/echo/x HTTP/1.1\r\n" + host + twice + b"\r\n")
    assert response.status == 400
    error = response.json()
    assert error["code"] == "bad_request"
    assert name in error["error"]


def test_websocket_upgrade_gets_one_501_and_reaches_no_instance(
    gateway: Gateway, upstreams: dict[str, Upstream]
) -> None:
    seen = {name: u.count() for name, u in upstreams.items()}
    response = refused(
        gateway,
        b"GET /default/nodes/echo/ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\n"
        b"connection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"sec-websocket-version: 13\r\n\r\n",
    )
    assert response.status == 501
    assert response.json()["code"] == "upgrade_not_supported"
    assert {name: u.count() for name, u in upstreams.items()} == seen


def test_connect_is_405_with_allow(gateway: Gateway) -> None:
    response = refused(gateway, b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com\r\n\r\n")
    assert response.status == 405
    assert response.json()["code"] == "method_not_allowed"
    assert "GET" in (response.header("allow") or "")


def test_invalid_chunk_after_an_early_refusal_gets_no_second_answer(gateway: Gateway) -> None:
    """A 404 is answered at the head; the broken chunked body after it is only dropped."""
    with RawClient(gateway.port) as client:
        client.send(
            b"POST /not/a/route HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"
        )
        response = client.read_response()
        assert client.is_closed_after()
    assert response.status == 404
