"""Slow clients: the head must come within header_timeout_s of its first byte, and each
read of a body within body_timeout_s of the one before; else 408 and the connection is
closed. An idle keep-alive connection is not timed by them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from gateway_processes import Gateway, Upstream, node, table
from raw_http import RawClient

TIMEOUT_S = 0.5


@pytest.fixture
def strict(gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]) -> Gateway:
    """A gateway with short client timeouts."""
    routes = table(node("echo", upstreams["a"].endpoint))
    return gateway_factory(
        routes, "--header-timeout-s", str(TIMEOUT_S), "--body-timeout-s", str(TIMEOUT_S)
    )


def dribble(client: RawClient, data: bytes, every_s: float, stop: threading.Event) -> None:
    """Send ``data`` one byte at a time until ``stop`` is set or the server closes."""
    for byte in data:
        if stop.wait(every_s):
            return
        try:
            client.send(bytes([byte]))
        except OSError:
            return


def test_slowloris_head_is_408_and_the_connection_closed(strict: Gateway) -> None:
    stop = threading.Event()
    with RawClient(strict.port) as client:
        head = b"GET /default/nodes/echo/x HTTP/1.1\r\nhost: x\r\n" + b"x-slow: 1\r\n" * 100
        sender = threading.Thread(target=dribble, args=(client, head, 0.05, stop), daemon=True)
        sender.start()
        try:
            response = client.read_response()
            assert client.is_closed_after()
        finally:
            stop.set()
    assert response.status == 408
    error = response.json()
    assert error["code"] == "request_timeout"
    assert "header_timeout_s" in error["error"]


def test_stalled_body_is_408(strict: Gateway) -> None:
    with RawClient(strict.port) as client:
        client.send(b"POST /default/nodes/echo/x HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n")
        client.send(b"\r\nabc")
        response = client.read_response()
        assert client.is_closed_after()
    assert response.status == 408
    assert "body_timeout_s" in response.json()["error"]


def test_body_arriving_in_reads_closer_than_the_timeout_is_forwarded(strict: Gateway) -> None:
    stop = threading.Event()
    with RawClient(strict.port) as client:
        client.send(b"POST /default/nodes/echo/x HTTP/1.1\r\nhost: x\r\ncontent-length: 6\r\n\r\n")
        dribble(client, b"abcdef", TIMEOUT_S / 3, stop)  # 1 s in all, twice the timeout
        response = client.read_response()
    assert response.status == 200
    assert response.json()["body_bytes"] == 6


def test_idle_keep_alive_connection_is_not_timed_by_them(strict: Gateway) -> None:
    request = b"GET /default/nodes/echo/x HTTP/1.1\r\nhost: x\r\n\r\n"
    with RawClient(strict.port) as client:
        client.send(request)
        assert client.read_response().status == 200
        time.sleep(TIMEOUT_S * 2)  # idle between requests: the keep-alive timeout applies
        client.send(request)
        assert client.read_response().status == 200
