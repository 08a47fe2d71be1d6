"""The traffic part of the control plane's ``/metrics``: what the gateway counted (every
worker added up) and each instance's CPU and memory, as the sampler read them last (at
most ``series.sample_s`` old), so an existing Prometheus scrapes pier alone.

Each series is labelled with the project and with whichever of node, alias and instance
it is of: ``pier_node_*`` {project, node}, ``pier_alias_*`` {project, alias, node} (an
alias's requests a node took), ``pier_instance_*`` {project, node, instance}. Only
nodes, aliases and instances the store holds now are shown, so the series stay as many
as the installation's objects (the gateway keeps a removed node's counters)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from pier.domain.traffic import Figures, InstanceUsage, Traffic
from pier.services.routes import TrafficSource
from pier.store.repository import Repository

_BYTES = "Bytes: direction in (request line, headers, body) and out (written to the client)."


class TrafficCollector(Collector):
    def __init__(self, repo: Repository, source: TrafficSource) -> None:
        self._repo = repo
        self._source = source

    def collect(self) -> Iterator[Metric]:
        traffic = self._source.traffic() or Traffic()
        nodes = {(n.project, n.name) for n in self._repo.list_nodes()}
        aliases = {(a.project, a.name) for a in self._repo.list_aliases()}
        instances = {(i.project, i.node, i.id) for i in self._repo.list_instances()}
        yield from _families(
            "pier_node",
            ["project", "node"],
            {k: f for k, f in traffic.nodes.items() if k in nodes},
            "code",
            in_flight=True,
        )
        yield from _families(
            "pier_alias",
            ["project", "alias", "node"],
            {
                k: f
                for k, f in traffic.aliases.items()
                if k[:2] in aliases and (k[0], k[2]) in nodes
            },
            "code",
        )
        yield from _families(
            "pier_instance",
            ["project", "node", "instance"],
            {k: f for k, f in traffic.instances.items() if k in instances},
            "outcome",
            duration=False,
        )
        yield from _usage(self._source.usage(), instances)


def _families(
    prefix: str,
    labels: list[str],
    figures: Mapping[tuple[str, ...], Figures],
    class_label: str,
    *,
    duration: bool = True,
    in_flight: bool = False,
) -> Iterator[Metric]:
    """Requests, bytes and, where the gateway keeps them, the duration histogram and
    requests in flight of each of ``figures``."""
    requests = CounterMetricFamily(
        f"{prefix}_requests",
        "Requests the gateway answered, by status class (an instance's: answered or failed).",
        labels=[*labels, class_label],
    )
    durations = HistogramMetricFamily(
        f"{prefix}_request_duration_seconds",
        "How long requests took at the gateway (a node's: the upstream's answer; an alias's: "
        "from the first try to the end of the answer).",
        labels=labels,
    )
    now = GaugeMetricFamily(
        f"{prefix}_in_flight_requests", "Requests being forwarded now.", labels=labels
    )
    transferred = CounterMetricFamily(f"{prefix}_bytes", _BYTES, labels=[*labels, "direction"])
    for key, mine in sorted(figures.items()):
        names = list(key)
        for code, count in sorted(mine.by_class.items()):
            requests.add_metric([*names, code], count)
        if mine.latency:
            durations.add_metric(names, _buckets(mine.latency), sum_value=mine.latency_sum_s)
        now.add_metric(names, mine.in_flight)
        transferred.add_metric([*names, "in"], mine.bytes_in)
        transferred.add_metric([*names, "out"], mine.bytes_out)
    yield requests
    if duration:
        yield durations
    if in_flight:
        yield now
    yield transferred


def _usage(
    usage: Mapping[str, InstanceUsage], instances: set[tuple[str, str, str]]
) -> Iterator[Metric]:
    labels = ["project", "node", "instance"]
    cpu = GaugeMetricFamily(
        "pier_instance_cpu_percent", "An instance's CPU, percent of one core.", labels=labels
    )
    memory = GaugeMetricFamily(
        "pier_instance_memory_bytes", "An instance's resident memory.", labels=labels
    )
    for instance_id, mine in sorted(usage.items()):
        if (mine.project, mine.node, instance_id) not in instances:
            continue
        names = [mine.project, mine.node, instance_id]
        if mine.cpu_percent is not None:
            cpu.add_metric(names, mine.cpu_percent)
        if mine.memory_bytes is not None:
            memory.add_metric(names, float(mine.memory_bytes))
    yield cpu
    yield memory


def _buckets(latency: Mapping[float, float]) -> list[tuple[str, float]]:
    return [("+Inf" if math.isinf(b) else repr(b), c) for b, c in sorted(latency.items())]
