"""The control plane's sampler: every ``series.sample_s`` it turns the gateway's counters
into increases over the seconds since the previous sample (requests, 5xx, latency
buckets, bytes in and out: per node, per node of an alias, bytes per instance), reads
requests in flight and instances by status, the CPU and memory of each local instance
from its runtime (psutil on the process tree: cheap), and each model node instance's
model-server statistics (inferences, queue and compute time; read only when the gateway
sent the instance requests since its last read). Docker instances are
skipped for CPU and memory: a docker stats call takes a second or more per container.

An alias's series are kept under the alias's name with fields ``alias.*``, one series
per node behind it (``observability.series.ALIAS_FIELD``).

The last read of the gateway and the last CPU and memory of each instance stay in
memory for the control plane's ``/metrics`` (``traffic``, ``usage``).

The store is written on a worker thread, never on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

from pier.controller.gateway_view import GatewayView
from pier.controller.model_stats import ModelServerCounts, read_model_stats
from pier.controller.store_thread import StoreThread
from pier.controller.store_view import StoreView
from pier.domain.instance_status import InstanceStatus
from pier.domain.names import InstanceId
from pier.domain.records import InstanceRecord
from pier.domain.traffic import Figures, InstanceUsage, Traffic
from pier.observability.series import ALIAS_FIELD, Sample, SeriesStore
from pier.runtimes.base import Runtime
from pier.runtimes.local.runtime import LocalRuntime
from pier.store.repository import Repository

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Increase:
    """What a counter-set gained between two samples."""

    requests: float
    errors: float
    buckets: list[float]
    """Requests per latency bucket (non-cumulative)."""
    bytes_in: float
    bytes_out: float


def increases(before: Figures | None, now: Figures, *, error_class: str = "5xx") -> Increase:
    """Requests, errors (``error_class``), per-bucket latency counts and bytes since
    ``before``; a counter lower than before (the gateway restarted) counts from zero."""

    def delta(old: float, new: float) -> float:
        return new - old if new >= old else new

    old = before or Figures()
    requests = sum(delta(old.by_class.get(c, 0.0), n) for c, n in now.by_class.items())
    errors = delta(old.by_class.get(error_class, 0.0), now.by_class.get(error_class, 0.0))
    cumulative = [delta(old.latency.get(b, 0.0), n) for b, n in sorted(now.latency.items())]
    buckets = [c - p for p, c in zip([0.0, *cumulative][:-1], cumulative, strict=True)]
    return Increase(
        requests,
        errors,
        [max(0.0, b) for b in buckets],
        delta(old.bytes_in, now.bytes_in),
        delta(old.bytes_out, now.bytes_out),
    )


def _counter_samples(
    p: str, n: str, instance: str, grown: Increase, elapsed: float, prefix: str = ""
) -> list[Sample]:
    samples = [
        Sample(p, n, prefix + "requests", grown.requests, elapsed, instance),
        Sample(p, n, prefix + "errors", grown.errors, elapsed, instance),
        Sample(p, n, prefix + "bytes_in", grown.bytes_in, elapsed, instance),
        Sample(p, n, prefix + "bytes_out", grown.bytes_out, elapsed, instance),
    ]
    if grown.buckets:
        samples.append(
            Sample(p, n, prefix + "latency", sum(grown.buckets), 1.0, instance, grown.buckets)
        )
    return samples


class Sampler:
    def __init__(
        self,
        store: SeriesStore,
        repo: Repository,
        gateway: GatewayView | None,
        runtimes: Mapping[str, Runtime],
        *,
        interval_s: float,
        model_stats: bool = False,
        model_stats_timeout_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``model_stats``: whether model servers' statistics are read."""
        self._store = store
        self._repo = repo
        self._gateway = gateway
        self._runtimes = runtimes
        self._interval_s = interval_s
        self._reads_model_stats = model_stats
        self._model_stats_timeout_s = model_stats_timeout_s
        self._clock = clock
        self._previous: Traffic | None = None
        self._previous_at: float | None = None
        self._model_counts: dict[str, _ModelRead] = {}
        self._usage: dict[str, InstanceUsage] = {}
        self._task: asyncio.Task[None] | None = None
        self._store_thread = StoreThread()
        self._nodes = StoreView(repo, self._store_thread)

    def traffic(self) -> Traffic | None:
        """The gateway's figures as the last sample read them (None before one did)."""
        return self._previous

    def usage(self) -> Mapping[str, InstanceUsage]:
        """The last CPU and memory measured of each Healthy local instance, by id."""
        return self._usage

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self._store.close)
        self._store_thread.close()

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
        samples += await self._instance_samples(now)
        await asyncio.to_thread(self._store.write, samples, now)

    async def _gateway_samples(self, now: float) -> list[Sample]:
        traffic = await self._gateway.traffic() if self._gateway is not None else None
        if traffic is None:
            return []
        elapsed = now - self._previous_at if self._previous_at is not None else None
        samples = [
            Sample(p, n, "in_flight", f.in_flight, 1.0) for (p, n), f in traffic.nodes.items()
        ]
        before = self._previous or Traffic()
        self._previous, self._previous_at = traffic, now
        if elapsed is None or elapsed <= 0:
            return samples
        for (p, n), figures in traffic.nodes.items():
            grown = increases(before.nodes.get((p, n)), figures)
            samples += _counter_samples(p, n, "", grown, elapsed)
        for (p, a, n), figures in traffic.aliases.items():
            grown = increases(before.aliases.get((p, a, n)), figures)
            samples += _counter_samples(p, a, n, grown, elapsed, ALIAS_FIELD)
        for (p, n, i), figures in traffic.instances.items():
            grown = increases(before.instances.get((p, n, i)), figures, error_class="failed")
            samples.append(Sample(p, n, "bytes_in", grown.bytes_in, elapsed, i))
            samples.append(Sample(p, n, "bytes_out", grown.bytes_out, elapsed, i))
        return samples

    async def _instance_samples(self, now: float) -> list[Sample]:
        samples: list[Sample] = []
        usage: dict[str, InstanceUsage] = {}
        model_instances: list[InstanceRecord] = []
        nodes = (await self._nodes.read()).nodes  # read again only where they changed
        by_node: dict[tuple[str, str], list[InstanceRecord]] = {}
        for record in await asyncio.to_thread(self._repo.list_instances):  # one read for all
            by_node.setdefault((record.project, record.node), []).append(record)
        measured: list[InstanceRecord] = []
        for node in nodes:
            p, n = node.key.project, node.key.node
            instances = by_node.get((p, n), [])
            healthy = [i for i in instances if i.status is InstanceStatus.HEALTHY]
            samples.append(Sample(p, n, "instances", float(len(instances)), 1.0))
            samples.append(Sample(p, n, "instances_healthy", float(len(healthy)), 1.0))
            if node.spec.model is not None:
                model_instances += [i for i in healthy if i.endpoint]
            measured += healthy
        local = self._runtimes.get("local")
        if isinstance(local, LocalRuntime) and measured:
            ids = [InstanceId(i.id) for i in measured]
            stats_of = await local.stats_of(ids)
            for instance, instance_id in zip(measured, ids, strict=True):
                stats = stats_of[instance_id]
                proj, name, i = instance.project, instance.node, instance.id
                usage[i] = InstanceUsage(proj, name, stats.cpu_percent, stats.memory_bytes)
                if stats.cpu_percent is not None:
                    samples.append(Sample(proj, name, "cpu_percent", stats.cpu_percent, 1.0, i))
                if stats.memory_bytes is not None:
                    mem = float(stats.memory_bytes)
                    samples.append(Sample(proj, name, "memory_bytes", mem, 1.0, i))
        self._usage = usage
        return samples + await self._model_samples(model_instances, now)

    async def _model_samples(self, instances: list[InstanceRecord], now: float) -> list[Sample]:
        """Inferences/s and mean queue and compute time per request of each instance,
        from the increase of its model server's statistics since the previous sample.

        An instance the gateway sent no request since its last read is not read again:
        its statistics cannot have moved, so it gets the samples of no increase. This keeps
        the sampler's cost at idle flat in the number of nodes."""
        if not self._reads_model_stats:
            return []
        timeout_s = self._model_stats_timeout_s
        traffic = self._previous
        served = {i.id: _requests_to(traffic, i) for i in instances}
        to_read = [i for i in instances if not self._is_unchanged(i.id, served[i.id])]
        read_ids = {i.id for i in to_read}
        read = await asyncio.gather(
            *(read_model_stats(i.endpoint or "", timeout_s) for i in to_read)
        )
        counts_of: dict[str, ModelServerCounts | None] = {
            i.id: self._model_counts[i.id].counts for i in instances if i.id not in read_ids
        }  # not read: as they were
        counts_of.update((i.id, counts) for i, counts in zip(to_read, read, strict=True))
        samples: list[Sample] = []
        known: dict[str, _ModelRead] = {}
        for instance in instances:
            previous = self._model_counts.get(instance.id)
            counts = counts_of[instance.id]
            if counts is None:
                continue
            known[instance.id] = _ModelRead(now, counts, served[instance.id])
            if previous is None or now <= previous.at:
                continue
            grown = counts.since(previous.counts)
            p, n, i = instance.project, instance.node, instance.id
            samples += [
                Sample(p, n, "inferences", grown.inferences, now - previous.at, i),
                Sample(p, n, "queue_s", grown.queue_s, grown.queued, i),
                Sample(p, n, "compute_s", grown.compute_s, grown.computed, i),
            ]
        self._model_counts = known
        return samples

    def _is_unchanged(self, instance_id: str, served: float | None) -> bool:
        """Whether the gateway sent the instance no request since its last read."""
        previous = self._model_counts.get(instance_id)
        return previous is not None and served is not None and previous.served == served


@dataclass(frozen=True, slots=True)
class _ModelRead:
    at: float
    counts: ModelServerCounts
    served: float | None
    """The gateway's count of requests the instance answered or failed then; None when the
    gateway did not show it or had requests in flight to it (they may end after the read)."""


def _requests_to(traffic: Traffic | None, instance: InstanceRecord) -> float | None:
    """The requests the gateways sent ``instance`` so far (0 for one they show no figures
    of: they sent it none); None when unknown (no gateway figures) or some are in flight."""
    if traffic is None:
        return None
    figures = traffic.instances.get((instance.project, instance.node, instance.id))
    if figures is None:
        return 0.0
    if figures.in_flight:
        return None
    return sum(figures.by_class.values())
