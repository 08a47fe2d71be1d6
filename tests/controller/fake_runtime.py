"""A fake container engine, a fake gateway and a settable clock, for in-process tests of
the reconcile loop on a real store.

FakeRuntime implements the Runtime protocol (like the docker runtime): it raises the errors it is
given, in order, then works; with ``serve`` every instance it starts listens on a real TCP
port of its own (a tcp health check passes; a ``handler`` may answer HTTP there), and
``crash()`` stops one. FakeGateway answers the two things the controller reads from the
gateway (/healthz and /metrics) from values the test sets. The clock is what the
controller's plan, backoff and autoscaling read.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pier.controller.loop import Controller
from pier.controller.rollouts import CountsReader
from pier.controller.routes import RouteBoard
from pier.domain.gateways import GatewayReport
from pier.domain.names import InstanceId, NodeKey
from pier.domain.records import EventRecord
from pier.domain.specs import parse_node_spec
from pier.runtimes.base import InstanceSpec, InstanceStats, Observed
from pier.settings import ControllerSettings
from pier.store.repository import Repository

PINNED = "127.0.0.1:5000/echo@sha256:" + "a" * 64
TCP_HEALTH = {"protocol": "tcp", "interval_s": 0.01}
METRICS_HEAD = (
    "# HELP pier_gateway_in_flight_seconds_total requests in flight, integrated over time\n"
    "# TYPE pier_gateway_in_flight_seconds_total counter\n"
)


@dataclass
class FakeClock:
    """The controller's clock: moves only when the test says so."""

    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
"""What an instance does with each connection it accepts."""


@dataclass
class FakeRuntime:
    """A docker-like Runtime that raises the errors it is given, in order, then works."""

    name: str = "docker"
    endpoint: str | None = None
    serve: bool = False
    """Each instance listens on a port of its own (its endpoint), until it crashes."""
    handler: Serve | None = None
    """With ``serve``: what each connection gets (by default it is closed at once)."""
    exit_on_start: int | None = None
    """Every instance it starts has exited at once with this code (a crash loop)."""
    held: dict[str, asyncio.Event] = field(default_factory=dict)
    """Starting an instance of one of these nodes (by name) waits until its event is set."""
    pull_errors: list[Exception] = field(default_factory=list)
    create_errors: list[Exception] = field(default_factory=list)
    delete_errors: list[Exception] = field(default_factory=list)
    pulls: int = 0
    creates: int = 0
    """Tries to start an instance, failed ones included."""
    deletes: int = 0
    created: list[InstanceId] = field(default_factory=list)
    deleted: list[InstanceId] = field(default_factory=list)
    running: dict[InstanceId, Observed] = field(default_factory=dict)
    servers: dict[InstanceId, asyncio.Server] = field(default_factory=dict)
    connections: dict[InstanceId, Connections] = field(default_factory=dict)
    """Each serving instance's open connections (a probe keeps its one open)."""

    async def resolve_image(
        self,
        ref: str,
        *,
        auth: dict[str, str] | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> str:
        self.pulls += 1
        if self.pull_errors:
            raise self.pull_errors.pop(0)
        return PINNED

    async def create(self, spec: InstanceSpec) -> Observed:
        if (gate := self.held.get(spec.node.node)) is not None:
            await gate.wait()
        self.creates += 1
        if self.create_errors:
            raise self.create_errors.pop(0)
        self.created.append(spec.instance_id)
        endpoint = self.endpoint
        if self.serve:
            connections = self.connections.setdefault(spec.instance_id, Connections())
            handler = self.handler or _hang_up
            server = await asyncio.get_running_loop().create_server(
                lambda: TrackedProtocol(handler, connections), "127.0.0.1", 0
            )
            self.servers[spec.instance_id] = server
            endpoint = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        phase = "exited" if self.exit_on_start is not None else "running"
        seen = Observed(
            spec.instance_id, spec.node, phase, endpoint,
            exit_code=self.exit_on_start, generation=spec.generation,
        )  # fmt: skip
        self.running[spec.instance_id] = seen
        return seen

    async def crash(self, instance_id: InstanceId, *, exit_code: int = 1) -> None:
        """The instance's process dies: it stops listening and shows as exited."""
        await self._close_server(instance_id)
        seen = self.running[instance_id]
        self.running[instance_id] = Observed(
            seen.instance_id, seen.node, "exited", seen.endpoint,
            exit_code=exit_code, generation=seen.generation,
        )  # fmt: skip

    async def delete(self, instance_id: InstanceId, *, grace_s: float) -> None:
        self.deletes += 1
        if self.delete_errors:
            raise self.delete_errors.pop(0)
        await self._close_server(instance_id)
        if self.running.pop(instance_id, None) is not None:
            self.deleted.append(instance_id)

    async def logs(
        self, instance_id: InstanceId, *, follow: bool, tail: int | None = None
    ) -> AsyncIterator[str]:
        for line in ():
            yield line

    async def stats(self, instance_id: InstanceId) -> InstanceStats:
        return InstanceStats()

    async def close(self) -> None:
        for instance_id in list(self.servers):
            await self._close_server(instance_id)

    async def list(self, *, node: NodeKey | None = None) -> list[Observed]:
        return [o for o in self.running.values() if node is None or o.node == node]

    async def _close_server(self, instance_id: InstanceId) -> None:
        """As when the process dies: it stops listening and its connections close."""
        server = self.servers.pop(instance_id, None)
        if server is not None:
            server.close()
        connections = self.connections.pop(instance_id, None)
        if connections is not None:
            connections.close()


class Connections:
    """One instance's connections, each from the moment it is made (before its handler
    runs): when the instance stops, every one closes, and one made later closes at once."""

    def __init__(self) -> None:
        self._open: set[asyncio.BaseTransport] = set()
        self._closed = False

    def made(self, transport: asyncio.BaseTransport) -> None:
        if self._closed:
            transport.close()
        else:
            self._open.add(transport)

    def lost(self, transport: asyncio.BaseTransport) -> None:
        self._open.discard(transport)

    def close(self) -> None:
        self._closed = True
        for transport in self._open:
            transport.close()
        self._open.clear()


class TrackedProtocol(asyncio.StreamReaderProtocol):
    """A stream server's protocol whose connections ``connections`` keeps."""

    def __init__(self, handler: Serve, connections: Connections) -> None:
        super().__init__(asyncio.StreamReader(), handler)
        self._connections = connections
        self._made: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._made = transport
        self._connections.made(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._made is not None:
            self._connections.lost(self._made)
        super().connection_lost(exc)


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


@dataclass
class FakeGateway:
    """Answers /healthz (the routes version it serves, requests in flight to removed
    instances) and /metrics (each node's in-flight integral) from values the test sets."""

    in_flight_seconds: dict[str, float] = field(default_factory=dict)
    """By node name, in the default project."""
    draining: dict[str, int] = field(default_factory=dict)
    routes_version: int = 2**62
    """The version it serves: far ahead by default, so only ``draining`` holds a drain."""
    health_reads: int = 0
    server: asyncio.Server | None = None
    _connections: Connections = field(default_factory=Connections)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def start(self) -> None:
        self._connections = Connections()
        self.server = await asyncio.get_running_loop().create_server(
            lambda: TrackedProtocol(self._serve, self._connections), "127.0.0.1", 0
        )

    async def stop(self) -> None:
        """Stop listening and close every connection (the controller's kept-alive ones)."""
        if self.server is not None:
            self.server.close()
        self._connections.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:  # a pooled connection closed unused
            writer.close()
            return
        path = request.split(b" ", 2)[1]
        if path == b"/healthz":
            self.health_reads += 1
            text = json.dumps({"routes_version": self.routes_version, "draining": self.draining})
        else:
            text = METRICS_HEAD + "".join(
                f'pier_gateway_in_flight_seconds_total{{project="default",node="{n}"}} {v}\n'
                for n, v in self.in_flight_seconds.items()
            )
        body = text.encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()
        writer.close()


class Located(Protocol):
    """A gateway, fake or real: where it answers."""

    @property
    def url(self) -> str: ...


def serve(
    board: RouteBoard, version: int, *, gateway: str = "gw-a", worker: int = 0, workers: int = 1
) -> None:
    """``gateway``'s worker reports that it serves ``version``."""
    report = GatewayReport(url="http://gw", worker=worker, workers=workers, routes_version=version)
    board.gateways.report(gateway, report)


def make_controller(
    repo: Repository,
    runtime: FakeRuntime,
    tmp_path: Path,
    *,
    clock: Callable[[], float] | None = None,
    gateway: Located | None = None,
    alias_counts: CountsReader | None = None,
    board: RouteBoard | None = None,
    **settings: Any,
) -> Controller:
    values: dict[str, Any] = {"backoff_base_s": 0.02, "backoff_max_s": 0.1, "stop_grace_s": 0}
    values.update(settings)
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return Controller(
        repo, {runtime.name: runtime}, settings=ControllerSettings(**values),
        models_dir=tmp_path, board=board or RouteBoard(),
        gateway_url=gateway.url if gateway is not None else None, alias_counts=alias_counts,
        **extra,
    )  # fmt: skip


@asynccontextmanager
async def controllers(repo: Repository, tmp_path: Path) -> AsyncIterator[Callable[..., Controller]]:
    """Make controllers (``make(runtime, **kwargs)``, see make_controller); on the way out
    every one is stopped, leaving its instances, and every runtime closed. In the test's
    own event loop: stopping one stops the tasks it started."""
    made: list[tuple[Controller, FakeRuntime]] = []

    def make(runtime: FakeRuntime, **kwargs: Any) -> Controller:
        controller = make_controller(repo, runtime, tmp_path, **kwargs)
        made.append((controller, runtime))
        return controller

    try:
        yield make
    finally:
        for controller, runtime in reversed(made):
            await controller.stop(stop_instances=False)
            await runtime.close()


def add_image_node(repo: Repository, name: str = "web", **spec: Any) -> None:
    """An image node on the fake runtime, its image already pinned."""
    repo.add_node(
        "default",
        name,
        parse_node_spec({"image": "127.0.0.1:5000/echo:1", "port": 8080, **spec}),
        runtime="docker",
    )
    repo.pin_image("default", name, PINNED)


async def tick_until(controller: Controller, done: Callable[[], Any], *, ticks: int = 400) -> Any:
    """Tick the controller until ``done()`` holds (background work runs in between)."""
    for _ in range(ticks):
        await controller.tick()
        if value := done():
            return value
        await asyncio.sleep(0.005)
    raise AssertionError("the controller never got there")


def events(repo: Repository, kind: str, node: str = "web") -> list[EventRecord]:
    return [e for e in repo.list_events("default", node, limit=1000) if e.kind == kind]
