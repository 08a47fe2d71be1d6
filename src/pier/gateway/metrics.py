"""The gateway's Prometheus metrics, per node: requests by status class, upstream latency,
requests in flight, bytes in and out, and the in-flight integral the autoscaler reads.

Bytes (``pier_gateway_bytes_total``, and ``_alias_``/``_instance_`` beside it, label
``direction`` in/out): a request's line, headers and body, and every byte written to
the client in answer, counted per node, per (alias, node) and per routed instance.

``pier_gateway_in_flight_seconds_total`` is the integral of the number of requests in
flight over time: its increase over a window divided by the window is the average
concurrency of the node over that window, however short the requests were (a gauge
sampled now and then misses them).

The hot path only increments plain integers on a ``NodeStats`` (no locks, no label
lookups); ``GET /metrics`` turns them into Prometheus text through a custom collector.
With ``--workers N`` each worker process reports its own requests: ``/metrics`` on the
shared port is whichever worker the connection reached, and ``/healthz`` lists each
worker's own URL, where its figures can be scraped (the controller adds them up).

Series of private nodes are only shown to a caller with a valid bearer token (the one
private routes take): to anyone else, ``/metrics`` names public nodes only.

``pier_gateway_instance_requests_total`` counts, per routed instance, the requests it
answered below 500 (``outcome="answered"``) and those that failed (a 5xx, the gateway's
502/504 for it, a refused connection): the control plane skips the health probe of an
instance whose answers moved without a failure (passive health). The counts are kept on
the instance's pool entry (``pool.Upstream``), so an instance's series goes when its
route goes, and a count of zero is not shown.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Final, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from pier.domain.latency import LATENCY_BUCKETS_S

CONTENT_TYPE: Final = b"text/plain; version=0.0.4; charset=utf-8"
_CLASSES: Final = tuple(f"{i}xx" for i in range(1, 10))


class ConnectionFigures(Protocol):
    """The client connections of the shared port (``connections.ClientConnections``)."""

    @property
    def open(self) -> Collection[object]: ...
    @property
    def idle(self) -> Collection[object]: ...
    @property
    def refused(self) -> int: ...
    @property
    def idle_closed(self) -> int: ...


class Outcomes:
    """Requests by status class, latency histogram counts and bytes (the common part of
    a node's and an alias node's figures)."""

    __slots__ = ("by_class", "bytes_in", "bytes_out", "latency_counts", "latency_sum_s")

    def __init__(self) -> None:
        self.by_class = [0] * 10
        self.latency_counts = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self.latency_sum_s = 0.0
        self.bytes_in = 0
        """Bytes of the requests: line, headers (with the gateway's own) and body."""
        self.bytes_out = 0
        """Bytes written to the clients in answer, the gateway's errors included."""

    def record(
        self, status: int, latency_s: float | None, received: int = 0, sent: int = 0
    ) -> None:
        """Count one finished request; ``latency_s`` is None when no instance answered;
        ``received``/``sent``: its bytes in and out."""
        self.by_class[status // 100] += 1  # statuses are 100..999
        self.bytes_in += received
        self.bytes_out += sent
        if latency_s is not None:
            self.latency_counts[bisect_left(LATENCY_BUCKETS_S, latency_s)] += 1
            self.latency_sum_s += latency_s


class NodeStats(Outcomes):
    """Counters of one node (``project``/``node`` empty for requests that matched no node)."""

    __slots__ = ("busy_at", "busy_s", "in_flight", "node", "project")

    def __init__(self, project: str, node: str) -> None:
        super().__init__()
        self.project = project
        self.node = node
        self.in_flight = 0
        self.busy_s = 0.0
        """Integral of ``in_flight`` over time up to ``busy_at`` (loop time)."""
        self.busy_at = 0.0

    def begin(self, now: float) -> None:
        """A request starts being forwarded (``now``: the event loop's time)."""
        if self.in_flight:
            self.busy_s += self.in_flight * (now - self.busy_at)
        self.busy_at = now
        self.in_flight += 1

    def end(self, now: float) -> None:
        """A forwarded request is done."""
        self.busy_s += self.in_flight * (now - self.busy_at)
        self.busy_at = now
        self.in_flight -= 1

    def in_flight_seconds(self, now: float) -> float:
        """The integral of requests in flight over time, up to ``now``."""
        return self.busy_s + self.in_flight * max(0.0, now - self.busy_at)


class AliasStats(Outcomes):
    """Counters of one node of an alias: the alias's requests it took (gateway errors
    counted by their status), and their duration from the gateway's first try to the
    end of the response."""

    __slots__ = ("alias", "node", "project")

    def __init__(self, project: str, alias: str, node: str) -> None:
        super().__init__()
        self.project = project
        self.alias = alias
        self.node = node


class MirrorStats:
    """Counters of one mirror of an alias: copies sent (answered below 500), dropped
    (no room in the queue or budget, or a body over the limit) and failed (5xx or no
    answer), their latency, and how their V2 outputs compared with the primary's."""

    __slots__ = (
        "alias",
        "differ",
        "dropped",
        "equal",
        "errors",
        "latency_counts",
        "latency_sum_s",
        "max_abs_difference",
        "node",
        "project",
        "sent",
    )

    def __init__(self, project: str, alias: str, node: str) -> None:
        self.project = project
        self.alias = alias
        self.node = node
        self.sent = 0
        self.dropped = 0
        self.errors = 0
        self.latency_counts = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self.latency_sum_s = 0.0
        self.equal = 0
        self.differ = 0
        self.max_abs_difference = 0.0
        """The largest absolute difference between a mirrored and a primary output."""

    def count_dropped(self) -> None:
        """A copy was not sent: no room, or a body over the limit."""
        self.dropped += 1

    def count_error(self) -> None:
        """A copy got no whole answer: no instance, a failed connection, a timeout."""
        self.errors += 1

    def answered(self, status: int, latency_s: float) -> None:
        """A copy was answered with ``status`` after ``latency_s``."""
        if status >= 500:
            self.errors += 1
        else:
            self.sent += 1
        self.latency_counts[bisect_left(LATENCY_BUCKETS_S, latency_s)] += 1
        self.latency_sum_s += latency_s

    def compared(self, is_equal: bool, max_abs_difference: float) -> None:
        """The copy's outputs were compared with the primary's."""
        if is_equal:
            self.equal += 1
        else:
            self.differ += 1
        self.max_abs_difference = max(self.max_abs_difference, max_abs_difference)


class InstanceCounts(Protocol):
    """How one instance's requests ended (``pool.Upstream`` keeps them)."""

    @property
    def instance_id(self) -> str: ...
    @property
    def answered(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def bytes_in(self) -> int: ...
    @property
    def bytes_out(self) -> int: ...


RoutedInstance = tuple[str, str, InstanceCounts]
"""(project, node, its instance's counts) of an instance in the routes."""

AliasShown = Callable[[str, str], bool]
"""Whether the series of alias (project, alias) may be shown to this scrape."""


class GatewayMetrics:
    """All NodeStats, AliasStats and MirrorStats of this process, kept across route table
    versions."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        connections: ConnectionFigures | None = None,
    ) -> None:
        """``clock``: the event loop's time, the one ``begin``/``end`` are given."""
        self.clock = clock
        self._nodes: dict[tuple[str, str], NodeStats] = {}
        self._aliases: dict[tuple[str, str, str], AliasStats] = {}
        self._mirrors: dict[tuple[str, str, str], MirrorStats] = {}
        self.unrouted = self.node("", "")
        self.connections = connections
        """The client connections of the shared port, for their figures."""

    def node(self, project: str, node: str) -> NodeStats:
        """The stats of ``project/node``, created on first use."""
        stats = self._nodes.get((project, node))
        if stats is None:
            stats = self._nodes[(project, node)] = NodeStats(project, node)
        return stats

    def alias(self, project: str, alias: str, node: str) -> AliasStats:
        """The stats of ``node`` as a node of ``project/alias``, created on first use."""
        key = (project, alias, node)
        stats = self._aliases.get(key)
        if stats is None:
            stats = self._aliases[key] = AliasStats(project, alias, node)
        return stats

    def mirror(self, project: str, alias: str, node: str) -> MirrorStats:
        """The stats of ``node`` as a mirror of ``project/alias``, created on first use."""
        key = (project, alias, node)
        stats = self._mirrors.get(key)
        if stats is None:
            stats = self._mirrors[key] = MirrorStats(project, alias, node)
        return stats

    def activity(self) -> tuple[object, ...]:
        """A fingerprint of everything a rendering shows but the instance counts (which
        move with their node's requests): equal fingerprints, equal renderings. It moves
        when a request finishes or a mirror copy is dropped anywhere, a series or a client
        connection comes or goes, and at every reading while a request is in flight (the
        in-flight integral grows). Cheap: a few integers per node, no text."""
        finished = in_flight = 0
        for stats in self._nodes.values():
            finished += sum(stats.by_class)
            in_flight += stats.in_flight
        moving = self.clock() if in_flight else None
        dropped = sum(m.dropped for m in self._mirrors.values())
        series = (len(self._nodes), len(self._aliases), len(self._mirrors))
        connections = self.connections
        seen = () if connections is None else (
            len(connections.open), len(connections.idle), connections.refused,
            connections.idle_closed,
        )  # fmt: skip
        return (finished, moving, dropped, series, seen)

    def all(self) -> list[NodeStats]:
        return list(self._nodes.values())

    def aliases(self) -> list[AliasStats]:
        return list(self._aliases.values())

    def mirrors(self) -> list[MirrorStats]:
        return list(self._mirrors.values())

    def render(
        self,
        is_shown: Callable[[NodeStats], bool] | None = None,
        is_alias_shown: AliasShown | None = None,
        instances: Iterable[RoutedInstance] = (),
    ) -> bytes:
        """Prometheus text exposition of every counter, of the nodes ``is_shown`` accepts
        and the aliases (and their mirrors) ``is_alias_shown`` accepts (None: all), and
        the request counts of ``instances`` (the caller picks the ones it may show)."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self, is_shown))
        registry.register(_AliasCollector(self, is_alias_shown))
        registry.register(_InstanceCollector(instances))
        return generate_latest(registry)


class _Collector:
    def __init__(
        self, metrics: GatewayMetrics, is_shown: Callable[[NodeStats], bool] | None
    ) -> None:
        self._metrics = metrics
        self._is_shown = is_shown

    def collect(self) -> Iterator[Metric]:
        labels = ["project", "node"]
        requests = CounterMetricFamily(
            "pier_gateway_requests",
            "Requests answered by the gateway, by node and status class.",
            labels=[*labels, "code"],
        )
        latency = HistogramMetricFamily(
            "pier_gateway_upstream_latency_seconds",
            "From sending a request to an instance until its response was complete.",
            labels=labels,
        )
        in_flight = GaugeMetricFamily(
            "pier_gateway_in_flight_requests", "Requests being forwarded now.", labels=labels
        )
        busy = CounterMetricFamily(
            "pier_gateway_in_flight_seconds",
            "Integral of requests in flight over time; its rate is the average concurrency.",
            labels=labels,
        )
        transferred = _bytes_family("pier_gateway_bytes", "of a node's requests", labels)
        now = self._metrics.clock()
        is_shown = self._is_shown
        for stats in self._metrics.all():
            if is_shown is not None and not is_shown(stats):
                continue
            names = [stats.project, stats.node]
            busy.add_metric(names, stats.in_flight_seconds(now))
            _add_classes(requests, names, stats.by_class)
            _add_bytes(transferred, names, stats.bytes_in, stats.bytes_out)
            in_flight.add_metric(names, stats.in_flight)
            _add_histogram(latency, names, stats.latency_counts, stats.latency_sum_s)
        yield requests
        yield latency
        yield in_flight
        yield busy
        yield transferred
        if self._metrics.connections is not None:
            yield from _connection_figures(self._metrics.connections)


class _AliasCollector:
    """The series of aliases and their mirrors (labels project, alias, node)."""

    def __init__(self, metrics: GatewayMetrics, is_shown: AliasShown | None) -> None:
        self._metrics = metrics
        self._is_shown = is_shown

    def collect(self) -> Iterator[Metric]:
        labels = ["project", "alias", "node"]
        requests = CounterMetricFamily(
            "pier_gateway_alias_requests",
            "Requests through an alias, by the node that took them and status class "
            "(gateway errors counted by their status).",
            labels=[*labels, "class"],
        )
        duration = HistogramMetricFamily(
            "pier_gateway_alias_request_duration_seconds",
            "Requests through an alias, from the gateway's first try until the response "
            "was complete (or the gateway's error was sent).",
            labels=labels,
        )
        transferred = _bytes_family(
            "pier_gateway_alias_bytes", "of an alias's requests a node took", labels
        )
        is_shown = self._is_shown
        for stats in self._metrics.aliases():
            if is_shown is None or is_shown(stats.project, stats.alias):
                names = [stats.project, stats.alias, stats.node]
                _add_classes(requests, names, stats.by_class)
                _add_histogram(duration, names, stats.latency_counts, stats.latency_sum_s)
                _add_bytes(transferred, names, stats.bytes_in, stats.bytes_out)
        yield requests
        yield duration
        yield transferred
        yield from self._mirror_figures(labels)

    def _mirror_figures(self, labels: list[str]) -> Iterator[Metric]:
        outcomes = CounterMetricFamily(
            "pier_gateway_mirror_requests",
            "Copies of an alias's requests for a mirror node: sent (answered below 500), "
            "dropped (no room, or a body over the limit), error (5xx or no answer).",
            labels=[*labels, "outcome"],
        )
        duration = HistogramMetricFamily(
            "pier_gateway_mirror_request_duration_seconds",
            "Mirrored requests, from sending the copy until its response was complete.",
            labels=labels,
        )
        compared = CounterMetricFamily(
            "pier_gateway_mirror_compared",
            "Mirrored V2 answers whose outputs were compared with the primary's.",
            labels=[*labels, "result"],
        )
        difference = GaugeMetricFamily(
            "pier_gateway_mirror_max_abs_difference",
            "The largest absolute difference between a mirrored and a primary output.",
            labels=labels,
        )
        is_shown = self._is_shown
        for stats in self._metrics.mirrors():
            if is_shown is not None and not is_shown(stats.project, stats.alias):
                continue
            names = [stats.project, stats.alias, stats.node]
            outcomes.add_metric([*names, "sent"], stats.sent)
            outcomes.add_metric([*names, "dropped"], stats.dropped)
            outcomes.add_metric([*names, "error"], stats.errors)
            _add_histogram(duration, names, stats.latency_counts, stats.latency_sum_s)
            compared.add_metric([*names, "equal"], stats.equal)
            compared.add_metric([*names, "differ"], stats.differ)
            difference.add_metric(names, stats.max_abs_difference)
        yield from (outcomes, duration, compared, difference)


class _InstanceCollector:
    """Each routed instance's requests, answered and failed (labels project, node,
    instance, outcome); zero counts are left out."""

    def __init__(self, instances: Iterable[RoutedInstance]) -> None:
        self._instances = instances

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "pier_gateway_instance_requests",
            "Requests to an instance: answered below 500, or failed (a 5xx, the gateway's "
            "502/504 for it, a refused connection).",
            labels=["project", "node", "instance", "outcome"],
        )
        transferred = _bytes_family(
            "pier_gateway_instance_bytes",
            "of the requests sent to an instance",
            ["project", "node", "instance"],
        )
        for project, node, counts in self._instances:
            names = [project, node, counts.instance_id]
            if counts.answered:
                requests.add_metric([*names, "answered"], counts.answered)
            if counts.failed:
                requests.add_metric([*names, "failed"], counts.failed)
            _add_bytes(transferred, names, counts.bytes_in, counts.bytes_out)
        yield requests
        yield transferred


def _add_classes(family: CounterMetricFamily, names: list[str], by_class: list[int]) -> None:
    for index, code in enumerate(_CLASSES, start=1):
        if by_class[index]:
            family.add_metric([*names, code], by_class[index])


def _bytes_family(name: str, whose: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(
        name,
        f"Bytes {whose}: direction in (request line, headers, body) and out (what was "
        "written to the client).",
        labels=[*labels, "direction"],
    )


def _add_bytes(family: CounterMetricFamily, names: list[str], received: int, sent: int) -> None:
    if received:
        family.add_metric([*names, "in"], received)
    if sent:
        family.add_metric([*names, "out"], sent)


def _add_histogram(
    family: HistogramMetricFamily, names: list[str], counts: list[int], sum_s: float
) -> None:
    if sum(counts):
        family.add_metric(names, _cumulative(counts), sum_value=sum_s)


def _connection_figures(connections: ConnectionFigures) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "pier_gateway_client_connections",
        "Client connections open on the shared port (max_connections caps them).",
        value=len(connections.open),
    )
    yield GaugeMetricFamily(
        "pier_gateway_idle_client_connections",
        "Open client connections with nothing owed and no request being read.",
        value=len(connections.idle),
    )
    yield CounterMetricFamily(
        "pier_gateway_client_connections_refused",
        "Connections answered 503 because max_connections were open and busy.",
        value=connections.refused,
    )
    yield CounterMetricFamily(
        "pier_gateway_idle_client_connections_closed",
        "Idle client connections closed to make room at max_connections.",
        value=connections.idle_closed,
    )


def _cumulative(counts: list[int]) -> list[tuple[str, float]]:
    buckets: list[tuple[str, float]] = []
    total = 0
    for bound, count in zip((*LATENCY_BUCKETS_S, float("inf")), counts, strict=True):
        total += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), total))
    return buckets
