"""Pipelined requests: answered in order, read with back-pressure (the gateway stops
reading a connection that owes responses once max_pipelined_bytes more arrived), and
``100 Continue`` only after the responses owed before it."""

from __future__ import annotations

import socket
import threading

import psutil
from gateway_processes import Gateway
from raw_http import RawClient

LIMIT = 16 * 2**20
MIB = 2**20


class PiecesSender(threading.Thread):
    """Sends ``pieces`` one after the other, counting the bytes sent."""

    def __init__(self, sock: socket.socket, pieces: list[bytes]) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.pieces = pieces
        self.sent = 0

    def run(self) -> None:
        for piece in self.pieces:
            for start in range(0, len(piece), MIB):
                self.sock.sendall(piece[start : start + MIB])
                self.sent += min(MIB, len(piece) - start)


def test_20_pipelined_16_mib_requests_are_read_with_back_pressure_and_answered_in_order(
    gateway: Gateway,
) -> None:
    body = b"x" * LIMIT
    head = b"POST /default/nodes/echo/%s HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n"
    pieces = [head % (b"sleep?s=3", LIMIT), body]
    for i in range(1, 20):
        pieces += [head % (b"p%d" % i, LIMIT), body]
    process = psutil.Process(gateway.process.pid)
    rss_before = process.memory_info().rss
    with RawClient(gateway.port, timeout_s=60) as client:
        sender = PiecesSender(client.sock, pieces)
        sender.start()
        first = client.read_response()  # the instance slept 3 s: what was read meanwhile?
        sent_meanwhile = sender.sent
        rss_growth = process.memory_info().rss - rss_before
        rest = [client.read_response() for _ in range(19)]
        sender.join(timeout=30)
    assert first.json() == {"slept": True}
    assert sent_meanwhile < 128 * MIB, sent_meanwhile  # not the 320 MiB sent in all
    assert rss_growth < 128 * MIB, rss_growth
    assert [r.json()["target"] for r in rest] == [f"/p{i}" for i in range(1, 20)]
    assert {r.json()["body_bytes"] for r in rest} == {LIMIT}


def test_100_continue_comes_after_the_responses_owed_before_it(gateway: Gateway) -> None:
    with RawClient(gateway.port) as client:
        client.send(
            b"GET /default/nodes/echo/sleep?s=0.5 HTTP/1.1\r\nhost: x\r\n\r\n"
            b"POST /default/nodes/echo/e HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n"
            b"expect: 100-continue\r\n\r\n"
        )
        assert client.read_status_line().startswith(b"HTTP/1.1 200")
        assert client.read_response().json() == {"slept": True}
        assert client.read_response().status == 100
        client.send(b"hello")
        response = client.read_response()
    assert response.status == 200
    assert response.json()["body_bytes"] == 5


def test_100_continue_is_sent_at_once_when_nothing_is_owed(gateway: Gateway) -> None:
    with RawClient(gateway.port) as client:
        client.send(
            b"POST /default/nodes/echo/e HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n"
            b"expect: 100-continue\r\n\r\n"
        )
        assert client.read_response().status == 100
        client.send(b"hello")
        assert client.read_response().json()["body_bytes"] == 5
