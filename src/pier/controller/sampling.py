"""The control plane's sampler: every ``series.sample_s`` it turns the gateway's counters
into increases (requests, 5xx, latency buckets) over the seconds since the previous
sample, reads requests in flight and instances by status, and the CPU and memory of each
local instance from its runtime (psutil on the process tree: cheap). Docker instances
are skipped: a docker stats call takes a second or more per container.

The store is written on a worker thread, never on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping

import structlog

from pier.controller.gateway_view import GatewayView, NodeFigures
from pier.domain.instance_status import InstanceStatus
from pier.domain.names import InstanceId, NodeKey
from pier.observability.series import Sample, SeriesStore
from pier.runtimes.base import Runtime
from pier.store.repository import Repository

log = structlog.get_logger(__name__)


def increases(before: NodeFigures | None, now: NodeFigures) -> tuple[float, float, list[float]]:
    """Requests, 5xx and per-bucket latency counts (non-cumulative) since ``before``; a
    counter lower than before (the gateway restarted) counts from zero."""

    def delta(old: float, new: float) -> float:
        return new - old if new >= old else new

    old = before or NodeFigures()
    requests = sum(delta(old.by_class.get(c, 0.0), n) for c, n in now.by_class.items())
    errors = delta(old.by_class.get("5xx", 0.0), now.by_class.get("5xx", 0.0))
    cumulative = [delta(old.latency.get(b, 0.0), n) for b, n in sorted(now.latency.items())]
    buckets = [c - p for p, c in zip([0.0, *cumulative[:-1]], cumulative, strict=True)]
    return requests, errors, [max(0.0, b) for b in buckets]


class Sampler:
    def __init__(
        self,
        store: SeriesStore,
        repo: Repository,
        gateway: GatewayView | None,
        runtimes: Mapping[str, Runtime],
        *,
        interval_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._repo = repo
        self._gateway = gateway
        self._runtimes = runtimes
        self._interval_s = interval_s
        self._clock = clock
        self._previous: dict[NodeKey, NodeFigures] = {}
        self._previous_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self._store.close)

    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception:  # a failed sample must not end sampling
                log.exception("sampling failed")
            await asyncio.sleep(self._interval_s)

    async def sample(self) -> None:
        """Take one sample of every node and write it."""
        now = self._clock()
        samples = await self._gateway_samples(now)
        samples += await self._instance_samples()
        await asyncio.to_thread(self._store.write, samples, now)

    async def _gateway_samples(self, now: float) -> list[Sample]:
        figures = await self._gateway.figures() if self._gateway is not None else None
        if figures is None:
            return []
        elapsed = now - self._previous_at if self._previous_at is not None else None
        samples: list[Sample] = []
        for key, current in figures.items():
            p, n = key.project, key.node
            samples.append(Sample(p, n, "in_flight", current.in_flight, 1.0))
            if elapsed is None or elapsed <= 0:
                continue
            requests, errors, buckets = increases(self._previous.get(key), current)
            samples.append(Sample(p, n, "requests", requests, elapsed))
            samples.append(Sample(p, n, "errors", errors, elapsed))
            if buckets:
                samples.append(Sample(p, n, "latency", sum(buckets), 1.0, buckets=buckets))
        self._previous, self._previous_at = figures, now
        return samples

    async def _instance_samples(self) -> list[Sample]:
        samples: list[Sample] = []
        for node in await asyncio.to_thread(self._repo.list_nodes):
            p, n = node.key.project, node.key.node
            instances = await asyncio.to_thread(self._repo.list_instances, p, n)
            healthy = [i for i in instances if i.status is InstanceStatus.HEALTHY]
            samples.append(Sample(p, n, "instances", float(len(instances)), 1.0))
            samples.append(Sample(p, n, "instances_healthy", float(len(healthy)), 1.0))
            local = self._runtimes.get("local")
            for instance in healthy if local is not None else ():
                stats = await local.stats(InstanceId(instance.id))  # type: ignore[union-attr]
                if stats.cpu_percent is not None:
                    samples.append(Sample(p, n, "cpu_percent", stats.cpu_percent, 1.0, instance.id))
                if stats.memory_bytes is not None:
                    mem = float(stats.memory_bytes)
                    samples.append(Sample(p, n, "memory_bytes", mem, 1.0, instance.id))
        return samples
