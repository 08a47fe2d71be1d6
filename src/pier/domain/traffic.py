"""What the gateway counted of traffic, as the control plane reads it (every worker
added up): per node, per node of an alias, and per routed instance. The sampler turns
it into series; the control plane's ``/metrics`` shows it again."""

from __future__ import annotations

from dataclasses import dataclass, field

NodeOf = tuple[str, str]
"""(project, node)"""
AliasNodeOf = tuple[str, str, str]
"""(project, alias, node): a node as a node of an alias."""
InstanceOf = tuple[str, str, str]
"""(project, node, instance)"""


@dataclass(slots=True)
class Figures:
    """Counters of one node, alias node or instance."""

    by_class: dict[str, float] = field(default_factory=dict)
    """Requests by status class ("2xx", "5xx", ...); an instance's by outcome
    ("answered", "failed")."""
    latency: dict[float, float] = field(default_factory=dict)
    """Cumulative latency bucket counts by upper bound (inf for +Inf)."""
    latency_sum_s: float = 0.0
    in_flight: float = 0.0
    bytes_in: float = 0.0
    bytes_out: float = 0.0

    def add(self, other: Figures) -> None:
        for code, count in other.by_class.items():
            self.by_class[code] = self.by_class.get(code, 0.0) + count
        for bound, count in other.latency.items():
            self.latency[bound] = self.latency.get(bound, 0.0) + count
        self.latency_sum_s += other.latency_sum_s
        self.in_flight += other.in_flight
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out


@dataclass(slots=True)
class Traffic:
    """One read of the gateway (every worker's figures added up)."""

    nodes: dict[NodeOf, Figures] = field(default_factory=dict)
    aliases: dict[AliasNodeOf, Figures] = field(default_factory=dict)
    instances: dict[InstanceOf, Figures] = field(default_factory=dict)

    def add(self, other: Traffic) -> None:
        for mine, theirs in (
            (self.nodes, other.nodes),
            (self.aliases, other.aliases),
            (self.instances, other.instances),
        ):
            for key, figures in theirs.items():
                mine.setdefault(key, Figures()).add(figures)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class InstanceUsage:
    """An instance's CPU and memory, as its runtime measured them last."""

    project: str
    node: str
    cpu_percent: float | None
    memory_bytes: int | None
