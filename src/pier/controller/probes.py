"""Health probes: one task per instance, never inside a reconcile tick.

Each probe task keeps a ProbeWindow that the tick reads; a slow or hung instance
therefore never slows the loop for other nodes. A probe that cannot run at all (an
unexpected exception, not a failing instance) counts as a failure, is logged once per
change and retried with a backoff: the task never dies while its instance lives.

A round whose instance the gateway's traffic showed answering, without a failure, is
skipped and counts as a pass (passive health: see passive.py for the rule).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog

from pier.controller.backoff import Backoff
from pier.controller.incidents import describe_failure
from pier.controller.observe import ProbeWindow
from pier.controller.passive import TrafficWindow
from pier.controller.probe_client import BadAnswer, CannotConnect, HealthConnection
from pier.domain.specs import HealthCheck

log = structlog.get_logger("pier.controller")


class Connection(Protocol):
    """What an HTTP check needs of its connection (see probe_client.HealthConnection)."""

    async def get(self, timeout_s: float) -> int: ...

    def close(self) -> None: ...


Connect = Callable[[str, int, str], Connection]
"""Makes the connection of an HTTP check: (host, port, path)."""


class Probe:
    """Probes one instance at the health check's interval until stopped."""

    def __init__(
        self,
        endpoint: str,
        health: HealthCheck,
        *,
        retry_max_s: float = 60.0,
        connect: Connect = HealthConnection,
        passive_max_skips: int = 4,
    ) -> None:
        """``endpoint``: where the check goes, already on the health port (the runtime
        maps a container's health port to a host port of its own). ``retry_max_s``: the
        longest wait between probes that cannot run. ``connect``: makes the kept-alive
        connection of HTTP checks. ``passive_max_skips``: rounds the gateway's traffic may
        stand for in a row (see passive.py)."""
        self._endpoint = endpoint.rstrip("/")
        self._backoff = Backoff(health.interval_s, max(health.interval_s, retry_max_s))
        self._health = health
        self._connect = connect
        self._connection: Connection | None = None
        """Made on the first HTTP check (an endpoint it cannot use fails a check)."""
        self.window = ProbeWindow()
        self.traffic = TrafficWindow(max_skips=passive_max_skips)
        """What the gateway's traffic says of the instance (the controller feeds it)."""
        self._task: asyncio.Task[None] | None = None
        self._ever_passed = False
        self._channel: Any = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"probe {self._endpoint}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # a bug: it must not keep the instance from going
                log.error("health probe had stopped", endpoint=self._endpoint,
                          error=describe_failure(exc))  # fmt: skip
        if self._connection is not None:
            self._connection.close()
        if self._channel is not None:
            channel, self._channel = self._channel, None
            with contextlib.suppress(Exception):
                await channel.close()

    async def _run(self) -> None:
        while True:
            if self.traffic.take(may_skip=self.window.failures == 0):
                delay_s = self._answered_by_traffic()
            else:
                try:
                    ok, error = await self._check()
                except Exception as exc:
                    delay_s = self._could_not_check(exc)
                else:
                    delay_s = self._checked(ok, error)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay_s):
                    await self.traffic.woken.wait()  # a failure seen while paused

    def _answered_by_traffic(self) -> float:
        """The round is skipped: the instance answered traffic; counts as a pass."""
        w = self.window
        self.window = replace(
            w, passes=w.passes + 1, failures=0, last_error=None, skipped=w.skipped + 1
        )
        self._ever_passed = True
        return _to_next_round(self._health.interval_s)

    def _checked(self, ok: bool, error: str | None) -> float:
        """Record a probe's outcome; the delay before the next one: short while the
        instance is coming up, then the configured interval."""
        if self.window.unexpected_error is not None:
            log.info("health probe runs again", endpoint=self._endpoint)
        self._backoff.reset()
        self._record(ok, error)
        self._ever_passed = self._ever_passed or ok
        interval_s = self._health.interval_s
        return _to_next_round(interval_s) if self._ever_passed else min(0.2, interval_s)

    def _could_not_check(self, exc: Exception) -> float:
        message = describe_failure(exc)
        if message != self.window.unexpected_error:
            log.warning("health probe could not run", endpoint=self._endpoint, error=message)
        self._record(False, f"the health check could not run: {message}")
        self.window = replace(self.window, unexpected_error=message)
        return self._backoff.record_failure(now=asyncio.get_running_loop().time())

    async def _check(self) -> tuple[bool, str | None]:
        if self._health.protocol == "tcp":
            return await self._check_tcp()
        if self._health.protocol == "grpc":
            return await self._check_grpc()
        if self._connection is None:
            parts = urlsplit(self._endpoint)
            path = parts.path.rstrip("/") + (self._health.path or "/")
            host = parts.hostname or "127.0.0.1"
            self._connection = self._connect(host, parts.port or 80, path)
        url = self._url()
        try:
            status = await self._connection.get(self._health.timeout_s)
        except CannotConnect as exc:
            return False, f"cannot connect to {url}: {exc.strerror or 'refused'}"
        except (OSError, TimeoutError, BadAnswer) as exc:
            self.window = replace(self.window, connected=True)
            return False, f"health check {url} failed: {type(exc).__name__}"
        self.window = replace(self.window, connected=True, answered=True)
        if 200 <= status < 300:
            return True, None
        return False, f"health check {url} answered {status}"

    async def _check_tcp(self) -> tuple[bool, str | None]:
        parts = urlsplit(self._endpoint)
        port = parts.port
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
            # comes as the connection is made, and the probe would outlive its stop()
            async with asyncio.timeout(self._health.timeout_s):
                _, writer = await asyncio.open_connection(parts.hostname, port)
        except (OSError, TimeoutError) as exc:
            return False, f"cannot connect to {parts.hostname}:{port}: {exc}"
        writer.close()
        self.window = replace(self.window, connected=True, answered=True)
        return True, None

    async def _check_grpc(self) -> tuple[bool, str | None]:
        """The standard grpc.health.v1 Check; ``path`` names the service ("" = server)."""
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        parts = urlsplit(self._endpoint)
        target = f"{parts.hostname}:{parts.port}"
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(target)
        stub = health_pb2_grpc.HealthStub(self._channel)
        request = health_pb2.HealthCheckRequest(service=self._health.path or "")
        try:
            reply = await stub.Check(request, timeout=self._health.timeout_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.UNAVAILABLE:
                self.window = replace(self.window, connected=True, answered=True)
            return False, f"gRPC health check of {target}: {exc.code().name}: {exc.details()}"
        self.window = replace(self.window, connected=True, answered=True)
        if reply.status == health_pb2.HealthCheckResponse.SERVING:
            return True, None
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return False, f"gRPC health check of {target}: {status}"

    def _url(self) -> str:
        return self._endpoint + (self._health.path or "/")

    def _record(self, ok: bool, error: str | None) -> None:
        w = self.window
        checks = w.checks + 1
        if ok:
            self.window = replace(
                w, passes=w.passes + 1, failures=0, last_error=None, checks=checks,
                unexpected_error=None,
            )  # fmt: skip
        else:
            self.window = replace(
                w, passes=0, failures=w.failures + 1, last_error=error, checks=checks,
                unexpected_error=None,
            )  # fmt: skip


def _to_next_round(interval_s: float) -> float:
    """The wait until the next multiple of ``interval_s`` on the loop's clock: the probes
    of one interval run in the same turns of the event loop, their answers read in the
    same wake-ups (spread over the interval, each probe was two or three wake-ups of its
    own). At least half an interval, so that a probe is never checked twice at once."""
    now = asyncio.get_running_loop().time()
    wait_s = interval_s - now % interval_s
    return wait_s if wait_s >= interval_s / 2 else wait_s + interval_s
