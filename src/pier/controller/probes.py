"""Health probes: one task per instance, never inside a reconcile tick.

Each probe task keeps a ProbeWindow that the tick reads; a slow or hung instance
therefore never slows the loop for other nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from pier.controller.observe import ProbeWindow
from pier.domain.specs import HealthCheck


class Probe:
    """Probes one instance at the health check's interval until stopped."""

    def __init__(self, endpoint: str, health: HealthCheck, client: httpx.AsyncClient) -> None:
        """``endpoint``: where the check goes, already on the health port (the runtime
        maps a container's health port to a host port of its own)."""
        self._endpoint = endpoint.rstrip("/")
        self._health = health
        self._client = client
        self.window = ProbeWindow()
        self._task: asyncio.Task[None] | None = None
        self._ever_passed = False
        self._channel: Any = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"probe {self._endpoint}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def _run(self) -> None:
        # Probe quickly while an instance is coming up, then at the configured interval.
        while True:
            ok, error = await self._check()
            self._record(ok, error)
            self._ever_passed = self._ever_passed or ok
            interval_s = self._health.interval_s
            delay_s = interval_s if self._ever_passed else min(0.2, interval_s)
            await asyncio.sleep(delay_s)

    async def _check(self) -> tuple[bool, str | None]:
        if self._health.protocol == "tcp":
            return await self._check_tcp()
        if self._health.protocol == "grpc":
            return await self._check_grpc()
        url = self._url()
        try:
            response = await self._client.get(url, timeout=self._health.timeout_s)
        except httpx.ConnectError as exc:
            return False, f"cannot connect to {url}: {exc or 'refused'}"
        except httpx.HTTPError as exc:
            self.window = replace(self.window, connected=True)
            return False, f"health check {url} failed: {type(exc).__name__}"
        self.window = replace(self.window, connected=True, answered=True)
        if 200 <= response.status_code < 300:
            return True, None
        return False, f"health check {url} answered {response.status_code}"

    async def _check_tcp(self) -> tuple[bool, str | None]:
        parts = urlsplit(self._endpoint)
        port = parts.port
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname, port), self._health.timeout_s
            )
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
        if ok:
            self.window = replace(w, passes=w.passes + 1, failures=0, last_error=None)
        else:
            self.window = replace(w, passes=0, failures=w.failures + 1, last_error=error)
