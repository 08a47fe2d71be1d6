"""A raw-socket HTTP/1.1 client for hostile-client tests: sends any bytes, reads responses
one by one (Content-Length framed) and tells whether the server closed the connection."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from typing import Any


@dataclass
class RawResponse:
    status: int
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)


class RawClient:
    """One connection to ``port`` on 127.0.0.1."""

    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.buffer = b""

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def read_status_line(self) -> bytes:
        """The next line received (e.g. a status line), without taking it from the buffer."""
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise EOFError("closed before a line came")
        return self.buffer.split(b"\r\n", 1)[0]

    def read_response(self) -> RawResponse:
        """The next whole response; interim (1xx) responses are returned like others."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise EOFError(f"closed before a response head came: {self.buffer[:200]!r}")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, list[str]] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        status = int(status_line.split(" ", 2)[1])
        length = int(headers.get("content-length", ["0"])[0])
        while len(self.buffer) < length:
            if not self._fill():
                raise EOFError("closed before the body was complete")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return RawResponse(status, headers, body)

    def is_closed_after(self) -> bool:
        """True when the server closes the connection with nothing more sent (waits for it)."""
        while True:
            try:
                if not self._fill():
                    return not self.buffer
            except ConnectionResetError:
                return not self.buffer


class Sender(threading.Thread):
    """Sends ``total`` bytes of ``piece`` after ``first`` from a thread, counting what was
    sent; stops at the first error (the server closed the connection)."""

    def __init__(self, sock: socket.socket, first: bytes, piece: bytes, total: int) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.first = first
        self.piece = piece
        self.total = total
        self.sent = 0
        self.error: OSError | None = None

    def run(self) -> None:
        try:
            self.sock.sendall(self.first)
            self.sent = len(self.first)
            while self.sent < self.total:
                self.sock.sendall(self.piece)
                self.sent += len(self.piece)
        except OSError as e:
            self.error = e
