"""The gateway process: configuration, shared state, serving, draining, workers.

``Gateway`` is what connections share: the current ``Router``, the upstream pools, the
deadline sweep and the metrics. Route updates swap the Router in one assignment, so a
request sees either the old table or the new one, never a mix.

With ``workers > 1`` the parent forks that many processes before any event loop exists;
each binds the port with SO_REUSEPORT (the kernel spreads connections across them), runs
its own route sync and keeps its own pools. The parent restarts a worker that dies and
passes SIGTERM/SIGINT on.

A request on the shared port reaches whichever worker the kernel picks, so each worker
also listens on a port of its own on 127.0.0.1 (bound by the parent before forking, the same one
after a restart): ``/healthz`` on any worker lists them all under ``workers``, and the
control plane reads each worker's ``/healthz`` and ``/metrics`` there, so the load it
scales on and the requests it drains cover every worker. Route polls say which worker
asks (``worker``, ``workers``), so the control plane knows when all of them serve a route.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import structlog
import uvloop

from pier.domain.routes import RouteTable
from pier.gateway.limits import DEFAULT_MAX_BODY_BYTES, ClientLimits, Deadlines
from pier.gateway.metrics import GatewayMetrics
from pier.gateway.pool import IDLE_S, UpstreamRegistry
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


@dataclass(frozen=True, slots=True)
class Worker:
    """One of ``workers > 1`` processes: its index and the port only it listens on."""

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
    no_instance_wait_s: float = 2.0
    """How long a request for a node without Healthy instances waits for routes to change."""
    client: ClientLimits = field(default_factory=ClientLimits)
    """What each client connection may send, and how slowly."""


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
        self.metrics = GatewayMetrics(clock=loop.time)
        self.upstreams = UpstreamRegistry()
        self.deadlines = Deadlines(loop)
        self.connections: set[ClientConnection] = set()
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

    def _compile(self, table: RouteTable) -> Router:
        return Router(
            table,
            upstreams=self.upstreams,
            metrics=self.metrics,
            default_max_body_bytes=self.max_body_bytes,
        )

    async def serve(self, *, reuse_port: bool = False) -> None:
        """Serve until SIGTERM or SIGINT, then drain."""
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
        server = await self.loop.create_server(
            lambda: ClientConnection(self),
            config.host,
            config.port,
            reuse_port=reuse_port or None,
            backlog=4096,
        )
        own = None
        if worker is not None:
            own = await self.loop.create_server(lambda: ClientConnection(self), sock=worker.sock)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, stop.set)
        tasks = [
            asyncio.create_task(_forever("route sync", sync.run)),
            asyncio.create_task(_forever("deadline sweep", self.deadlines.run)),
            asyncio.create_task(_forever("pool expiry", self._expire_idle)),
            asyncio.create_task(_forever("client expiry", self._close_quiet_clients)),
        ]
        log.info("gateway serving", host=config.host, port=config.port, pid=os.getpid())
        await stop.wait()
        server.close()
        if own is not None:
            own.close()
        await self._drain()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _drain(self) -> None:
        deadline = self.loop.time() + DRAIN_S
        while self.loop.time() < deadline:
            for conn in list(self.connections):
                conn.close_when_idle()
            if not self.connections:
                return
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.cut()

    async def _expire_idle(self) -> None:
        while True:
            await asyncio.sleep(IDLE_S / 2)
            self.upstreams.close_expired(self.loop.time())

    async def _close_quiet_clients(self) -> None:
        while True:
            await asyncio.sleep(CLIENT_IDLE_S)
            for conn in list(self.connections):
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


def run_gateway(config: GatewayConfig) -> None:
    """Run the gateway in this process, or fork ``config.workers`` processes."""
    if config.workers <= 1:
        uvloop.run(_serve(config, reuse_port=False))
        return
    _supervise(config)


async def _serve(config: GatewayConfig, *, reuse_port: bool, worker: Worker | None = None) -> None:
    await Gateway(config, asyncio.get_running_loop(), worker).serve(reuse_port=reuse_port)


def _supervise(config: GatewayConfig) -> None:
    children: dict[int, int] = {}
    stopping = False
    socks = [_own_socket() for _ in range(config.workers)]
    urls = tuple(f"http://{OWN_HOST}:{sock.getsockname()[1]}" for sock in socks)

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                worker = Worker(index, config.workers, socks[index], urls)
                uvloop.run(_serve(config, reuse_port=True, worker=worker))
            except BaseException:
                log.exception("gateway worker failed", worker=index)
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        children[pid] = index

    def forward(sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for index in range(config.workers):
        spawn(index)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, -1)
        if index >= 0 and not stopping:
            log.warning("gateway worker exited", worker=index, status=status)
            time.sleep(0.5)
            spawn(index)


def _own_socket() -> socket.socket:
    """A listening socket on a port the system picks, for one worker alone."""
    sock = socket.socket(socket.AF_INET)
    sock.bind((OWN_HOST, 0))
    sock.listen(512)
    sock.setblocking(False)
    return sock
