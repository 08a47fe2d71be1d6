"""The client side of a relayed response: where its bytes go, and flow control back.

A ``ClientOutput`` belongs to one client connection. The instance connection relaying a
response writes to it and attaches itself as the source; when the client's transport
buffers too much (``pause_writing``), the client connection pauses the output, which
stops reading from the source until the buffer drains. A source attached while the
output is paused is paused at once.

A ``CopyingOutput`` keeps a bounded copy of what is written: put in front of a client's
output, it records the primary answer of a mirrored request (the client gets every byte
as before); on its own it collects a mirror's answer, which goes nowhere else.
"""

from __future__ import annotations

from typing import Any, Protocol


class Source(Protocol):
    """What produces the bytes: an instance connection (it stops and starts reading)."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...


class ClientOutput:
    """A client connection's transport as the relay sees it: write, pause, resume."""

    __slots__ = ("is_closed", "is_paused", "source", "transport", "written")

    def __init__(self) -> None:
        self.transport: Any = None
        self.written = 0
        """Bytes written to the client so far (an exchange's are the increase while it is
        answered: the gateway's bytes-out figures)."""
        self.is_closed = False
        """The client is gone (or was cut off): what is written is dropped."""
        self.is_paused = False
        self.source: Source | None = None

    def open(self, transport: Any) -> None:
        self.transport = transport

    def close(self) -> None:
        """Write nothing more (the connection was lost or cut)."""
        self.is_closed = True
        self.source = None

    def write(self, data: bytes) -> None:
        if not self.is_closed:
            self.written += len(data)
            self.transport.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        if not self.is_closed:
            for part in parts:
                self.written += len(part)
            self.transport.writelines(parts)

    def attach(self, source: Source) -> None:
        """``source`` relays the next response: it follows this output's pauses."""
        self.source = source
        if self.is_paused:
            source.pause()

    def detach(self, source: Source) -> None:
        if self.source is source:
            self.source = None

    def pause(self) -> None:
        """The client's transport buffers too much: stop the source."""
        self.is_paused = True
        if self.source is not None:
            self.source.pause()

    def resume(self) -> None:
        self.is_paused = False
        if self.source is not None:
            self.source.resume()


class CopyingOutput(ClientOutput):
    """Writes through to ``inner`` (if any) and keeps a copy of the first ``limit`` bytes."""

    __slots__ = ("copied", "inner", "is_truncated", "limit", "size")

    def __init__(self, inner: ClientOutput | None, limit: int) -> None:
        super().__init__()
        self.inner = inner
        self.limit = limit
        self.copied: list[bytes] = []
        self.size = 0
        self.is_truncated = False
        """More than ``limit`` bytes were written: the copy is not the whole answer."""

    def write(self, data: bytes) -> None:
        self._keep(data)
        if self.inner is not None:
            self.inner.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        for data in parts:
            self._keep(data)
        if self.inner is not None:
            self.inner.writelines(parts)

    def attach(self, source: Source) -> None:
        if self.inner is not None:
            self.inner.attach(source)

    def detach(self, source: Source) -> None:
        if self.inner is not None:
            self.inner.detach(source)

    def copy(self) -> bytes | None:
        """What was written, or None if it was more than ``limit`` bytes."""
        return None if self.is_truncated else b"".join(self.copied)

    def _keep(self, data: bytes) -> None:
        size = self.size + len(data)
        if size > self.limit:
            self.is_truncated = True
            self.copied.clear()
        elif not self.is_truncated:
            self.size = size
            self.copied.append(data)
