"""The gateway process: configuration, shared state, serving, draining, workers.

``Gateway`` is what connections share: the current ``Router``, the upstream pools, the
deadline sweep and the metrics. Route updates swap the Router in one assignment, so a
request sees either the old table or the new one, never a mix.

The process started binds the shared port and forks ``workers`` processes (one too)
before any event loop exists; each serves a listening socket of its own, all bound with
SO_REUSEPORT (the kernel spreads connections across them), runs its own route sync and
keeps its own pools. The parent keeps every listening socket open and replaces a worker
that dies: connections reaching a dead worker's socket wait in its backlog for the new
worker instead of being refused, so a crash fails only the requests the worker had in
flight. The parent passes SIGTERM/SIGINT on; a worker whose parent is gone stops.

A request on the shared port reaches whichever worker the kernel picks, so each worker
reports for itself (report.py: its routes version, draining requests and figures, under
the gateway's one id, with its index and the worker count), and the control plane adds
them up: the load it scales on and the requests it drains cover every worker, and a
route counts as served once every worker serves it. Each worker also listens on a port
of its own on 127.0.0.1 (bound by the parent before forking, the same one after a
restart), where ``/healthz`` and ``/metrics`` read that worker alone; ``/healthz`` on any
worker lists them all under ``workers``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final, NoReturn

import orjson
import structlog
import uvloop

from pier.domain.routes import RouteTable
from pier.gateway.balance import SessionPins
from pier.gateway.connections import ClientConnections, RefusedConnection, fit_open_files
from pier.gateway.errors import TooManyConnections, render_error
from pier.gateway.limits import DEFAULT_MAX_BODY_BYTES, ClientLimits, Deadlines, MirrorLimits
from pier.gateway.metrics import GatewayMetrics
from pier.gateway.mirror import Mirrors
from pier.gateway.pool import IDLE_S, UpstreamRegistry
from pier.gateway.report import Reporter, gateway_id, public_url
from pier.gateway.request_ids import RequestIds
from pier.gateway.routes import Router
from pier.gateway.server import ClientConnection
from pier.gateway.sync import RouteSync

log = structlog.get_logger("pier.gateway")

DRAIN_S: Final = 10.0
"""How long requests in flight may take to finish after SIGTERM."""
OWN_HOST: Final = "127.0.0.1"
"""Where each worker's own port listens: for the control plane on this machine, whatever
address the shared port is on."""
CLIENT_IDLE_S: Final = 60.0
"""Client connections quiet this long (up to twice as long) with nothing owed are closed."""
DEFAULT_MAX_CONNECTIONS: Final = 4096
DEFAULT_MAX_STICKY_SESSIONS: Final = 65536
BACKLOG: Final = 4096
"""Connections the kernel queues on a listening socket until a worker accepts them."""
RESPAWN_DELAY_S: Final = 0.5
"""A worker that dies within ``CRASH_LOOP_S`` of its start is replaced after this long."""
CRASH_LOOP_S: Final = 2.0
ORPHAN_CHECK_S: Final = 0.5
"""How often a worker checks that its parent is still there."""


@dataclass(frozen=True, slots=True)
class Worker:
    """One of ``workers > 1`` processes: its index and the port only it listens on (one
    worker alone has none)."""

    index: int
    count: int
    sock: socket.socket
    urls: tuple[str, ...]
    """Every worker's own URL, by index."""


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Everything ``python -m pier.gateway`` takes on its command line."""

    host: str = "127.0.0.1"
    port: int = 8000
    control_url: str | None = None
    token_file: Path | None = None
    routes_file: Path | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    workers: int = 1
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Client connections on the shared port, per worker."""
    no_instance_wait_s: float = 2.0
    """How long a request for a node without Healthy instances waits for routes to change."""
    client: ClientLimits = field(default_factory=ClientLimits)
    """What each client connection may send, and how slowly."""
    max_sticky_sessions: int = DEFAULT_MAX_STICKY_SESSIONS
    """Sticky sessions each worker remembers (to tell a caller it was re-pinned)."""
    mirror: MirrorLimits = field(default_factory=MirrorLimits)
    """What mirrored copies may take."""
    gateway_id: str | None = None
    """The id it reports under (report.gateway_id: made once, kept beside the routes
    file); None: found or made at start."""
    public_url: str | None = None
    """Where clients reach it, as it reports; None: ``http://host:port``."""


class Gateway:
    """State shared by every connection of one gateway process."""

    def __init__(
        self, config: GatewayConfig, loop: asyncio.AbstractEventLoop, worker: Worker | None = None
    ) -> None:
        self.config = config
        self.loop = loop
        self.worker = worker
        self.max_body_bytes = config.max_body_bytes
        self.no_instance_wait_s = config.no_instance_wait_s
        self.client_limits = config.client
        self.request_ids = RequestIds()
        self.clients: ClientConnections[ClientConnection] = ClientConnections(
            config.max_connections
        )
        """The shared port's connections: capped."""
        self.own_clients: ClientConnections[ClientConnection] = ClientConnections(None)
        """The worker's own port, where the control plane reads figures: not capped."""
        self.metrics = GatewayMetrics(clock=loop.time, connections=self.clients)
        self.upstreams = UpstreamRegistry()
        self.deadlines = Deadlines(loop)
        self.sessions = SessionPins(config.max_sticky_sessions)
        self.mirrors = Mirrors(self, config.mirror)
        self._refusal = render_error(TooManyConnections(config.max_connections), keep_alive=False)
        self.router = self._compile(RouteTable())
        self._routes_changed = asyncio.Event()

    def apply(self, table: RouteTable) -> None:
        """Serve ``table`` from now on."""
        router = self._compile(table)
        self.router = router
        self.upstreams.retire_all_but(router.upstreams)
        self._routes_changed.set()
        self._routes_changed = asyncio.Event()
        log.info(
            "routes applied",
            version=table.version,
            nodes=len(table.nodes),
            aliases=len(table.aliases),
        )

    async def wait_for_routes(self, timeout_s: float) -> None:
        """Return when the routes change, or after ``timeout_s``."""
        event = self._routes_changed
        try:
            async with asyncio.timeout(timeout_s):
                await event.wait()
        except TimeoutError:
            pass

    def render_health(self, authorization: bytes | None) -> bytes:
        """``/healthz``: the routes version, each worker's own URL and, for a caller with a
        valid bearer token, the requests in flight to instances that left the routes (their
        ids name their nodes, private ones too)."""
        status: dict[str, object] = {"status": "ok", "routes_version": self.router.version}
        if self.router.is_authorized(authorization):
            status["draining"] = self.upstreams.draining()
        if self.worker is not None:
            status["worker"] = self.worker.index
            status["workers"] = self.worker.urls
        return orjson.dumps(status)

    def render_metrics_for_admin(self) -> bytes:
        """``/metrics`` as a caller with a valid token sees it: every series."""
        return self.metrics.render(instances=self.router.routed_instances(public_only=False))

    def render_metrics(self, authorization: bytes | None) -> bytes:
        """``/metrics``: every node's and alias's series for a caller with a valid bearer
        token; only those of public nodes and aliases for anyone else, so the names of
        private ones stay private."""
        router = self.router
        if router.is_authorized(authorization):
            return self.render_metrics_for_admin()
        public, unrouted = router.public_nodes, self.metrics.unrouted
        public_aliases = router.public_aliases
        return self.metrics.render(
            lambda stats: stats is unrouted or (stats.project, stats.node) in public,
            lambda project, alias: (project, alias) in public_aliases,
            router.routed_instances(public_only=True),
        )

    def accept(self) -> asyncio.Protocol:
        """The protocol of a connection being accepted on the shared port: served if there
        is room (made by closing the connection idle longest if need be), else refused."""
        clients = self.clients
        if clients.admit():
            return ClientConnection(self, clients)
        return RefusedConnection(clients, self._refusal)

    def _accept_own(self) -> ClientConnection:
        self.own_clients.admit()
        return ClientConnection(self, self.own_clients)

    def _open_connections(self) -> list[ClientConnection]:
        return [*self.clients.open, *self.own_clients.open]

    def _compile(self, table: RouteTable) -> Router:
        return Router(
            table,
            upstreams=self.upstreams,
            metrics=self.metrics,
            default_max_body_bytes=self.max_body_bytes,
        )

    async def serve(
        self, listener: socket.socket | None = None, *, parent_pid: int | None = None
    ) -> None:
        """Serve until SIGTERM or SIGINT (or the parent, ``parent_pid``, is gone), then
        drain. ``listener``: the shared port, bound by the parent (else bound here)."""
        config = self.config
        worker = self.worker
        sync = RouteSync(
            self.apply,
            control_url=config.control_url,
            token_file=config.token_file,
            routes_file=config.routes_file,
            worker=(worker.index, worker.count) if worker else None,
        )
        initial = sync.load_file()
        if initial is not None:
            self.apply(initial)
        servers = await self._listen(listener)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, stop.set)
        tasks = [
            asyncio.create_task(_forever("route sync", sync.run)),
            *self._reporting(),
            asyncio.create_task(_forever("deadline sweep", self.deadlines.run)),
            asyncio.create_task(_forever("pool expiry", self._expire_idle)),
            asyncio.create_task(_forever("client expiry", self._close_quiet_clients)),
        ]
        if parent_pid is not None:
            tasks.append(asyncio.create_task(_stop_when_orphaned(parent_pid, stop)))
        log.info("gateway serving", host=config.host, port=config.port, pid=os.getpid())
        await stop.wait()
        for server in servers:
            server.close()
        await self._drain()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _reporting(self) -> list[asyncio.Task[None]]:
        """The task reporting to the control plane (report.py), if there is one."""
        config, worker = self.config, self.worker
        if config.control_url is None:
            return []
        reporter = Reporter(
            control_url=config.control_url, token_file=config.token_file,
            gateway_id=config.gateway_id or gateway_id(config.routes_file),
            url=config.public_url or public_url(config.host, config.port),
            worker=(worker.index, worker.count) if worker else (0, 1),
            snapshot=lambda: (self.router.version, self.upstreams.draining()),
            render_metrics=self.render_metrics_for_admin,
            activity=self.metrics.activity,
            routes_changed=self.wait_for_routes,
        )  # fmt: skip
        return [asyncio.create_task(_forever("gateway report", reporter.run))]

    async def _listen(self, listener: socket.socket | None) -> list[asyncio.Server]:
        loop, config = self.loop, self.config
        if listener is not None:
            shared = await loop.create_server(self.accept, sock=listener, backlog=BACKLOG)
        else:
            shared = await loop.create_server(
                self.accept, config.host, config.port, backlog=BACKLOG
            )
        if self.worker is None:
            return [shared]
        own = await loop.create_server(self._accept_own, sock=self.worker.sock)
        return [shared, own]

    async def _drain(self) -> None:
        deadline = self.loop.time() + DRAIN_S
        while self.loop.time() < deadline:
            for conn in self._open_connections():
                conn.close_when_idle()
            if not self._open_connections():
                return
            await asyncio.sleep(0.05)
        for conn in self._open_connections():
            conn.cut()

    async def _expire_idle(self) -> None:
        while True:
            await asyncio.sleep(IDLE_S / 2)
            self.upstreams.close_expired(self.loop.time())

    async def _close_quiet_clients(self) -> None:
        while True:
            await asyncio.sleep(CLIENT_IDLE_S)
            for conn in self._open_connections():
                conn.close_if_quiet()


async def _forever(name: str, run: Callable[[], Awaitable[None]]) -> None:
    """Run a background loop; a bug in one pass is logged, and the loop starts again."""
    while True:
        try:
            await run()
            return
        except Exception:
            log.exception("background task failed; restarting it", task=name)
            await asyncio.sleep(1.0)


async def _stop_when_orphaned(parent_pid: int, stop: asyncio.Event) -> None:
    """A worker whose parent is gone stops: nothing would replace it if it died, and the
    next gateway needs the port."""
    while True:
        await asyncio.sleep(ORPHAN_CHECK_S)
        if os.getppid() != parent_pid:
            break
    log.warning("gateway parent gone; worker stopping", parent=parent_pid)
    stop.set()


def run_gateway(config: GatewayConfig) -> None:
    """Bind the shared port here, then fork ``config.workers`` processes to serve it."""
    config = replace(
        config,
        max_connections=fit_open_files(config.max_connections),
        gateway_id=config.gateway_id or gateway_id(config.routes_file),  # one for every worker
    )
    listeners = [_shared_socket(config) for _ in range(config.workers)]
    _supervise(config, listeners)


async def _serve(
    config: GatewayConfig, listener: socket.socket, worker: Worker | None, parent_pid: int
) -> None:
    gateway = Gateway(config, asyncio.get_running_loop(), worker)
    await gateway.serve(listener, parent_pid=parent_pid)


def _supervise(config: GatewayConfig, listeners: list[socket.socket]) -> None:
    """Fork a worker per listening socket and replace each one that dies, until
    SIGTERM/SIGINT (passed on to the workers)."""
    own = [_own_socket() for _ in listeners] if len(listeners) > 1 else []
    urls = tuple(f"http://{OWN_HOST}:{sock.getsockname()[1]}" for sock in own)
    parent_pid = os.getpid()
    children: dict[int, tuple[int, float]] = {}
    """pid -> (worker index, when it started)."""
    stopping = False

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            worker = Worker(index, len(listeners), own[index], urls) if own else None
            _run_worker(config, index, (*listeners, *own), worker, parent_pid)
        children[pid] = (index, time.monotonic())

    def forward(sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for sock in (*listeners, *own):  # the workers close theirs as they start draining
            sock.close()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for index in range(len(listeners)):
        spawn(index)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index, started = children.pop(pid, (-1, 0.0))
        if index < 0 or stopping:
            continue
        log.warning("gateway worker exited; starting another", worker=index, status=status)
        if time.monotonic() - started < CRASH_LOOP_S:
            time.sleep(RESPAWN_DELAY_S)
        if not stopping:
            spawn(index)


def _run_worker(
    config: GatewayConfig,
    index: int,
    sockets: Sequence[socket.socket],
    worker: Worker | None,
    parent_pid: int,
) -> NoReturn:
    """The forked worker: serve ``sockets[index]`` (and its own port) until stopped."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    listener = sockets[index]
    for sock in sockets:  # other workers' sockets: held by the parent, not by this worker
        if sock is not listener and (worker is None or sock is not worker.sock):
            sock.close()
    code = 0
    try:
        uvloop.run(_serve(config, listener, worker, parent_pid))
    except BaseException:
        log.exception("gateway worker failed", worker=index)
        code = 1
    finally:
        sys.stdout.flush()
        os._exit(code)


def _shared_socket(config: GatewayConfig) -> socket.socket:
    """A listening socket on the shared port, bound by the parent so that it outlives
    every worker."""
    try:
        family, _, _, _, address = socket.getaddrinfo(
            config.host or None, config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = _tcp_socket(family)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if config.workers > 1:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
        except OSError:
            sock.close()
            raise
    except OSError as e:
        raise SystemExit(
            f"pier gateway: cannot listen on {config.host}:{config.port}: {e.strerror or e}"
        ) from None
    sock.setblocking(False)
    return sock


def _tcp_socket(family: int) -> socket.socket:
    """A TCP socket that names its protocol: asyncio turns Nagle off (TCP_NODELAY) only
    on accepted sockets of IPPROTO_TCP, and an answer written in pieces (a streamed one)
    would otherwise wait for the client's delayed ACK between them, 40 ms."""
    return socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)


def _own_socket() -> socket.socket:
    """A listening socket on a port the system picks, for one worker alone."""
    sock = _tcp_socket(socket.AF_INET)
    sock.bind((OWN_HOST, 0))
    sock.listen(512)
    sock.setblocking(False)
    return sock
