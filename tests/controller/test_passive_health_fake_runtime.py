"""Passive health: while the gateway's traffic shows an instance answering, its health
probe is not run; it runs again when the traffic stops, and an instance that starts
failing under traffic still goes Unhealthy.

In-process controller on a real store, the fake runtime of fake_runtime.py whose
instances answer HTTP on real ports (counting the health checks they get), and a real
gateway process that serves the controller's routes (through its routes file) and
whose /metrics the controller reads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.controller.fake_runtime import FakeRuntime, add_image_node, controllers
from tests.gateway.gateway_processes import Gateway, start_gateway, stop, write_routes

from pier.controller.routes import RouteBoard
from pier.controller.tracked import TrackedInstance
from pier.domain.instance_status import InstanceStatus
from pier.store.repository import Repository

S = InstanceStatus
INTERVAL_S = 0.4
"""The probe's interval: several controller ticks (0.1 s), so each round sees reads."""
HEALTH = {"path": "/health", "interval_s": INTERVAL_S, "unhealthy_threshold": 2}
PAUSED_ROUNDS = 3
WAIT_S = 10.0


@dataclass
class Instances:
    """What every instance answers: /health 200, anything else 200. Once ``failing``,
    /health answers 503 and every second other request 500 (half the traffic still
    answered). Health checks are counted."""

    health_checks: int = 0
    failing: bool = False
    health_failing: bool = False
    """Only /health answers 503; the traffic is answered 200."""
    _served: int = 0
    _open: set[asyncio.StreamWriter] = field(default_factory=set)

    async def aclose(self) -> None:
        """Close the connections still open (the gateway's, kept alive)."""
        for writer in self._open:
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                status = self._status(head.split(b" ", 2)[1])
                writer.write(b"HTTP/1.1 %d X\r\ncontent-length: 2\r\n\r\nok" % status)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._open.discard(writer)
            writer.close()

    def _status(self, path: bytes) -> int:
        if path == b"/health":
            self.health_checks += 1
            return 503 if self.failing or self.health_failing else 200
        self._served += 1
        return 500 if self.failing and self._served % 2 else 200


@contextlib.asynccontextmanager
async def routed_gateway(board: RouteBoard, tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway process serving the board's routes (written to its routes file)."""
    routes_file = tmp_path / "routes.json"
    write_routes(routes_file, board.table)
    gateway = await asyncio.to_thread(
        start_gateway, tmp_path, None, "--no-instance-wait-s", "0.05", routes_file=routes_file
    )

    async def follow() -> None:
        version = board.version
        while True:
            table = await board.wait_newer(version, wait_s=1.0)
            version = table.version
            write_routes(routes_file, table)

    task = asyncio.create_task(follow())
    try:
        yield gateway
    finally:
        task.cancel()
        stop(gateway.process)


async def until(check: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def traffic(url: str) -> AsyncIterator[dict[int, int]]:
    """Requests one after another through the gateway; counts by status."""
    statuses: dict[int, int] = {}

    async def send() -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                status = (await client.get(url)).status_code
                statuses[status] = statuses.get(status, 0) + 1

    task = asyncio.create_task(send())
    try:
        yield statuses
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await task


def status_of(repo: Repository) -> list[S]:
    return [r.status for r in repo.list_instances("default")]


@contextlib.asynccontextmanager
async def healthy_web(
    repo: Repository, tmp_path: Path, instances: Instances, health: dict[str, Any]
) -> AsyncIterator[tuple[Gateway, TrackedInstance]]:
    """A public image node "web" of one instance answering as ``instances`` do, behind a
    real gateway, its controller ticking every 0.1 s; yields once the instance is Healthy."""
    board = RouteBoard()
    add_image_node(repo, "web", health=health, access="public")
    async with (
        contextlib.aclosing(instances),
        routed_gateway(board, tmp_path) as gateway,
        controllers(repo, tmp_path) as make,
    ):
        runtime = FakeRuntime(serve=True, handler=instances.handle)
        controller = make(runtime, board=board, gateway=gateway, tick_s=0.1)
        await controller.start()
        await until(lambda: status_of(repo) == [S.HEALTHY], "a Healthy instance")
        (tracked,) = controller._instances.values()
        yield gateway, tracked


async def test_traffic_pauses_the_probe_and_a_failing_instance_still_goes_unhealthy(
    repo: Repository, tmp_path: Path
) -> None:
    instances = Instances()
    async with healthy_web(repo, tmp_path, instances, HEALTH) as (gateway, tracked):
        probe = tracked.probe
        assert probe is not None
        at_rest = instances.health_checks
        await until(lambda: instances.health_checks >= at_rest + 2, "probes at rest")

        url = f"{gateway.url}/default/nodes/web/work"
        async with traffic(url) as statuses:
            await until(lambda: probe.window.skipped >= 1, "a round answered by traffic")
            checks, skipped = instances.health_checks, probe.window.skipped
            await until(lambda: probe.window.skipped >= skipped + PAUSED_ROUNDS, "more rounds")
            # the traffic stands for the probe's rounds; a round whose gateway read found no
            # figures (a read slower than a tick on a loaded machine) probes, as designed
            assert instances.health_checks - checks < PAUSED_ROUNDS
            assert statuses.get(200, 0) > 0 and status_of(repo) == [S.HEALTHY]
        await until(lambda: instances.health_checks > checks, "the probe back after traffic")

        async with traffic(url) as statuses:
            skipped = probe.window.skipped
            await until(lambda: probe.window.skipped > skipped, "the probe paused again")
            instances.failing = True  # half its answers are 500, its health check 503
            await until(lambda: status_of(repo) == [S.UNHEALTHY], "the instance Unhealthy")
            assert statuses.get(500, 0) > 0 and statuses.get(200, 0) > 0
        assert tracked.view.last_error is not None and "503" in tracked.view.last_error


async def test_a_failing_health_check_under_answered_traffic_goes_unhealthy_and_stays(
    repo: Repository, tmp_path: Path
) -> None:
    instances = Instances()
    health = {**HEALTH, "grace_s": 60}  # Unhealthy long enough to be watched
    async with healthy_web(repo, tmp_path, instances, health) as (gateway, tracked):
        probe = tracked.probe
        assert probe is not None

        url = f"{gateway.url}/default/nodes/web/work"
        async with traffic(url) as statuses:
            await until(lambda: probe.window.skipped >= 1, "a round answered by traffic")
            instances.health_failing = True  # the traffic is still answered, all of it
            await until(lambda: status_of(repo) == [S.UNHEALTHY], "the instance Unhealthy")
            checks = instances.health_checks
            # rounds go on while the traffic that reached it as Healthy is still counted
            await until(lambda: instances.health_checks >= checks + 3, "three more checks")
            assert status_of(repo) == [S.UNHEALTHY]
            assert statuses.get(200, 0) > 0 and statuses.get(500, 0) == 0
        assert probe.window.failures >= 3
