"""What the controller reads of the gateways: each node's load (their /metrics figures),
and which route tables they serve and which removed instances they still have requests
in flight to.

Where it reads them is a ``GatewaySource``: in `pier up`, the gateway registry
(``gateway_registry.py``), where every gateway's workers push their reports, so the
figures cover every live gateway on any machine; ``HttpGateway`` reads one gateway's
workers over HTTP instead (tools and tests that talk to one gateway). Either way the
figures of every worker are combined: loads add up, the routes version is the oldest
any worker serves, and requests in flight to a removed instance add up.

The gateway names private nodes (in /metrics series, in the ids of draining instances)
only to a caller with a valid bearer token: ``HttpGateway`` sends the admin token, and a
gateway's report carries what the admin sees.

``alias_figures`` reads what the gateway counted of aliases as typed values: per (alias,
node) requests by status class and their latency histogram (``AliasFigures``: error rate
and p95 of a window are ``later.minus(earlier)``), and per (alias, mirror) the copies'
outcomes, latency and agreement (``MirrorFigures``), summed over the workers. The same
read gives each routed instance's answered and failed requests, for passive health
(``passive.py``). Each worker's text is parsed once for all of them."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
import structlog
from prometheus_client.parser import text_string_to_metric_families

from pier.controller.gateway_registry import WorkerStatus
from pier.controller.passive import InstanceTraffic, instance_traffic
from pier.controller.traffic_figures import parse_traffic
from pier.domain.names import AliasName, NodeKey, NodeName, ProjectName
from pier.domain.traffic import Traffic

log = structlog.get_logger(__name__)

IN_FLIGHT_SECONDS = "pier_gateway_in_flight_seconds"
READ_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    routes_version: int
    draining: dict[str, int]
    """Requests in flight to instances no longer in its routes, by instance id."""


class GatewaySource(Protocol):
    """Where the gateways' workers' state is read; None: no worker to read (or one did
    not answer)."""

    async def statuses(self) -> list[WorkerStatus] | None: ...

    async def metrics(self) -> list[tuple[str, str]] | None:
        """(worker key, Prometheus text) of every worker."""
        ...


class GatewayView:
    """The gateways' figures, every worker's combined (see the module docstring)."""

    def __init__(self, source: GatewaySource) -> None:
        self._source = source
        self._parsed: dict[tuple[str, str], tuple[str, Any]] = {}
        """By (worker key, parser): the last /metrics text parsed and what it gave. An idle
        gateway answers the same text read after read; it is parsed once."""

    @classmethod
    def over_http(
        cls, gateway_url: str, client: httpx.AsyncClient, *, token: str | None = None
    ) -> GatewayView:
        """Read one gateway's workers over HTTP (``token``: to see private nodes)."""
        return cls(HttpGateway(gateway_url, client, token=token))

    def _parse(self, key: str, text: str, parse: Callable[[str], _T]) -> _T:
        """``parse(text)``, or what it gave the last time this worker answered ``text``;
        text that does not parse counts as no figures (logged once per text)."""
        cache_key = (key, parse.__name__)
        last = self._parsed.get(cache_key)
        if last is not None and last[0] == text:
            value: _T = last[1]
            return value
        try:
            value = parse(text)
        except (ValueError, KeyError, IndexError, TypeError) as exc:  # not Prometheus text
            log.warning("gateway figures unreadable; counted as none", worker=key,
                        error=type(exc).__name__)  # fmt: skip
            value = parse("")
        self._parsed[cache_key] = (text, value)
        return value

    async def load(self) -> dict[NodeKey, float] | None:
        """``pier_gateway_in_flight_seconds_total`` by node, summed over the workers; None
        when no gateway worker answered."""
        read = await self.load_and_aliases()
        return None if read is None else read.loads

    async def alias_figures(self) -> AliasFiguresRead | None:
        """Every alias's and mirror's figures, summed over the workers; None when no
        gateway worker answered."""
        read = await self.load_and_aliases()
        return None if read is None else read.aliases

    async def load_and_aliases(self) -> GatewayFigures | None:
        """The nodes' load and the aliases' figures of one read of every worker's
        figures; None when no gateway worker answered."""
        texts = await self._source.metrics()
        if texts is None:
            return None
        loads: dict[NodeKey, float] = {}
        aliases = AliasFiguresRead()
        instances: dict[str, InstanceTraffic] = {}
        for key, text in texts:
            mine = self._parse(key, text, parse_gateway_figures)
            for node, value in mine.loads.items():
                loads[node] = loads.get(node, 0.0) + value
            aliases = aliases.plus(mine.aliases)
            for instance, traffic in mine.instances.items():
                known = instances.get(instance)
                instances[instance] = traffic if known is None else known.plus(traffic)
        return GatewayFigures(loads, aliases, instances)

    async def traffic(self) -> Traffic | None:
        """Every node's, alias node's and routed instance's counters (requests, latency
        buckets, in flight, bytes), summed over the workers; None when no gateway worker
        answered."""
        texts = await self._source.metrics()
        if texts is None:
            return None
        traffic = Traffic()
        for key, text in texts:
            traffic.add(self._parse(key, text, parse_traffic))
        return traffic

    async def status(self) -> GatewayStatus | None:
        """The routes version every worker serves (the oldest) and the requests in flight
        to removed instances (all workers'); None when no gateway worker answered."""
        statuses = await self._source.statuses()
        if not statuses:
            return None
        draining: dict[str, int] = {}
        for worker in statuses:
            for instance_id, in_flight in worker.draining.items():
                draining[instance_id] = draining.get(instance_id, 0) + int(in_flight)
        return GatewayStatus(min(w.routes_version for w in statuses), draining)


class HttpGateway:
    """One gateway read over HTTP: its /healthz lists its workers' own URLs, and each
    worker's /healthz and /metrics are read there.

    Until the gateway first answers it is starting, so failures are only logged once it
    had answered."""

    def __init__(
        self, gateway_url: str, client: httpx.AsyncClient, *, token: str | None = None
    ) -> None:
        self._url = gateway_url.rstrip("/")
        self._client = client
        self._headers = {"authorization": f"Bearer {token}"} if token else {}
        self._failing = False
        self._has_answered = False
        """False until the gateway first answers: it is still starting, not unavailable."""
        self._worker_urls: list[str] | None = None
        """Where each worker answers, as its /healthz said last; None: to be read again."""

    async def statuses(self) -> list[WorkerStatus] | None:
        read = await self._healthz()
        if read is None:
            return None
        return [
            WorkerStatus(url, int(body["routes_version"]),
                         {i: int(n) for i, n in (body.get("draining") or {}).items()})
            for url, body in read
        ]  # fmt: skip

    async def metrics(self) -> list[tuple[str, str]] | None:
        if self._worker_urls is None and await self._healthz() is None:
            return None
        texts = []
        for url in self._worker_urls or ():
            response = await self._get(url, "/metrics")
            if response is None:
                self._worker_urls = None
                return None
            texts.append((url, response.text))
        return texts

    async def _healthz(self) -> list[tuple[str, dict[str, Any]]] | None:
        """(url, /healthz body) of each worker: the gateway's own when it has one process."""
        response = await self._get(self._url, "/healthz")
        if response is None:
            return None
        body: dict[str, Any] = response.json()
        workers = [str(url).rstrip("/") for url in body.get("workers") or ()]
        if not workers:
            self._worker_urls = [self._url]
            return [(self._url, body)]
        statuses = []
        for url in workers:
            answer = await self._get(url, "/healthz")
            if answer is None:
                self._worker_urls = None
                return None
            statuses.append((url, answer.json()))
        self._worker_urls = workers
        return statuses

    async def _get(self, base_url: str, path: str) -> httpx.Response | None:
        try:
            response = await self._client.get(
                base_url + path, headers=self._headers, timeout=READ_TIMEOUT_S
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            if self._has_answered and not self._failing:
                log.info("gateway unavailable", url=base_url + path, error=str(exc))
            self._failing = True
            return None
        if self._failing and self._has_answered:
            log.info("gateway available again", url=base_url)
        self._failing = False
        self._has_answered = True
        return response


def parse_gateway_figures(text: str) -> GatewayFigures:
    """The nodes' load, the aliases' and the instances' figures of one worker's text."""
    families = list(text_string_to_metric_families(text))
    return GatewayFigures(
        _in_flight_seconds(families), _alias_figures(families), instance_traffic(families)
    )


def parse_in_flight_seconds(text: str) -> dict[NodeKey, float]:
    """``pier_gateway_in_flight_seconds_total`` samples of Prometheus text, by node."""
    return _in_flight_seconds(text_string_to_metric_families(text))


def _in_flight_seconds(families: Iterable[Any]) -> dict[NodeKey, float]:
    loads: dict[NodeKey, float] = {}
    for family in families:
        if family.name != IN_FLIGHT_SECONDS:
            continue
        for sample in family.samples:
            project, node = sample.labels.get("project"), sample.labels.get("node")
            if project and node:
                loads[NodeKey(ProjectName(project), NodeName(node))] = float(sample.value)
    return loads


ALIAS_REQUESTS = "pier_gateway_alias_requests"
ALIAS_DURATION = "pier_gateway_alias_request_duration_seconds"
MIRROR_REQUESTS = "pier_gateway_mirror_requests"
MIRROR_DURATION = "pier_gateway_mirror_request_duration_seconds"
MIRROR_COMPARED = "pier_gateway_mirror_compared"
MIRROR_DIFFERENCE = "pier_gateway_mirror_max_abs_difference"


@dataclass(frozen=True, slots=True, order=True)
class AliasNodeKey:
    """A node as a node (or mirror) of an alias."""

    project: ProjectName
    alias: AliasName
    node: NodeName


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    """Counts by upper bound (cumulative, as Prometheus has them; the last bound inf)."""

    buckets: tuple[tuple[float, float], ...] = ()
    sum_s: float = 0.0

    @property
    def count(self) -> int:
        return int(self.buckets[-1][1]) if self.buckets else 0

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1), interpolated within its bucket as Prometheus's
        histogram_quantile does; None without observations. In the last bucket (above
        every bound) it is the highest finite bound."""
        total = self.count
        if total == 0:
            return None
        rank = q * total
        lower, below = 0.0, 0.0
        for bound, cumulative in self.buckets:
            if cumulative >= rank and cumulative > below:
                if math.isinf(bound):
                    return lower
                return lower + (bound - lower) * (rank - below) / (cumulative - below)
            lower, below = bound, cumulative
        return lower

    def plus(self, other: LatencyHistogram) -> LatencyHistogram:
        return self._combined(other, 1.0)

    def minus(self, earlier: LatencyHistogram) -> LatencyHistogram:
        """The observations since ``earlier`` (figures of the same series read before)."""
        return self._combined(earlier, -1.0)

    def _combined(self, other: LatencyHistogram, sign: float) -> LatencyHistogram:
        if not other.buckets:
            return self
        if not self.buckets:
            return other if sign > 0 else LatencyHistogram()
        theirs = dict(other.buckets)
        buckets = tuple((b, max(0.0, c + sign * theirs.get(b, 0.0))) for b, c in self.buckets)
        return LatencyHistogram(buckets, self.sum_s + sign * other.sum_s)


@dataclass(frozen=True, slots=True)
class AliasFigures:
    """An alias's requests a node took, as the gateway counted them (every worker)."""

    key: AliasNodeKey
    requests: dict[str, int] = field(default_factory=dict)
    """By status class: "2xx", "4xx", "5xx"...; gateway errors by their status."""
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    """From the gateway's first try until the answer was complete."""

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def errors(self) -> int:
        """5xx answers, the instance's and the gateway's (502, 503, 504)."""
        return self.requests.get("5xx", 0)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.total if self.total else None

    @property
    def p95_s(self) -> float | None:
        return self.latency.quantile(0.95)

    def plus(self, other: AliasFigures) -> AliasFigures:
        return AliasFigures(
            self.key, _added(self.requests, other.requests, 1), self.latency.plus(other.latency)
        )

    def minus(self, earlier: AliasFigures) -> AliasFigures:
        """The requests since ``earlier`` (the same series, read before): a window."""
        requests = _added(self.requests, earlier.requests, -1)
        return AliasFigures(self.key, requests, self.latency.minus(earlier.latency))


@dataclass(frozen=True, slots=True)
class MirrorFigures:
    """Copies of an alias's requests sent to a mirror node (every worker)."""

    key: AliasNodeKey
    sent: int = 0
    """Copies answered below 500."""
    dropped: int = 0
    """Copies not sent: no room in the queue or budget, or a body over the limit."""
    errors: int = 0
    """Copies answered with a 5xx, or not answered (no instance, connection, timeout)."""
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    equal: int = 0
    differ: int = 0
    max_abs_difference: float = 0.0

    @property
    def mirrored(self) -> int:
        """Copies sent, answered or not."""
        return self.sent + self.errors

    @property
    def p50_s(self) -> float | None:
        return self.latency.quantile(0.5)

    @property
    def p95_s(self) -> float | None:
        return self.latency.quantile(0.95)

    @property
    def equal_share(self) -> float | None:
        """Of the V2 answers compared, the share whose outputs equal the primary's."""
        compared = self.equal + self.differ
        return self.equal / compared if compared else None

    def plus(self, other: MirrorFigures) -> MirrorFigures:
        return MirrorFigures(
            self.key,
            sent=self.sent + other.sent,
            dropped=self.dropped + other.dropped,
            errors=self.errors + other.errors,
            latency=self.latency.plus(other.latency),
            equal=self.equal + other.equal,
            differ=self.differ + other.differ,
            max_abs_difference=max(self.max_abs_difference, other.max_abs_difference),
        )


@dataclass(frozen=True, slots=True)
class AliasFiguresRead:
    """What the gateway counted of aliases: per (alias, node) and per (alias, mirror)."""

    aliases: dict[AliasNodeKey, AliasFigures] = field(default_factory=dict)
    mirrors: dict[AliasNodeKey, MirrorFigures] = field(default_factory=dict)

    def plus(self, other: AliasFiguresRead) -> AliasFiguresRead:
        return AliasFiguresRead(
            _merged(self.aliases, other.aliases), _merged(self.mirrors, other.mirrors)
        )


class _Summable(Protocol):
    def plus(self: _S, other: _S) -> _S: ...


_S = TypeVar("_S", bound=_Summable)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class GatewayFigures:
    """One read of the gateway's /metrics, every worker's summed."""

    loads: dict[NodeKey, float]
    """``pier_gateway_in_flight_seconds_total`` by node."""
    aliases: AliasFiguresRead
    instances: dict[str, InstanceTraffic] = field(default_factory=dict)
    """Each routed instance's answered and failed requests, by instance id."""


def _merged(ours: dict[AliasNodeKey, _S], theirs: dict[AliasNodeKey, _S]) -> dict[AliasNodeKey, _S]:
    merged = dict(ours)
    for key, figures in theirs.items():
        known = merged.get(key)
        merged[key] = figures if known is None else known.plus(figures)
    return merged


def _added(ours: dict[str, int], theirs: dict[str, int], sign: int) -> dict[str, int]:
    keys = ours.keys() | theirs.keys()
    return {k: max(0, ours.get(k, 0) + sign * theirs.get(k, 0)) for k in sorted(keys)}


def parse_alias_figures(text: str) -> AliasFiguresRead:
    """The alias and mirror figures of one worker's Prometheus text."""
    return _alias_figures(text_string_to_metric_families(text))


def _alias_figures(families: Iterable[Any]) -> AliasFiguresRead:
    requests: dict[AliasNodeKey, dict[str, int]] = {}
    latency: dict[str, dict[AliasNodeKey, _Histogram]] = {ALIAS_DURATION: {}, MIRROR_DURATION: {}}
    mirrors: dict[AliasNodeKey, dict[str, float]] = {}
    for family in families:
        if family.name in latency:
            _read_histogram(family.samples, latency[family.name])
            continue
        for sample in family.samples:
            key = _alias_node_key(sample.labels)
            if key is None:
                continue
            if family.name == ALIAS_REQUESTS:
                requests.setdefault(key, {})[sample.labels.get("class", "")] = int(sample.value)
            elif family.name == MIRROR_REQUESTS:
                mirrors.setdefault(key, {})[sample.labels.get("outcome", "")] = sample.value
            elif family.name == MIRROR_COMPARED:
                mirrors.setdefault(key, {})[sample.labels.get("result", "")] = sample.value
            elif family.name == MIRROR_DIFFERENCE:
                mirrors.setdefault(key, {})["max_abs_difference"] = sample.value
    alias_latency = {k: h.histogram() for k, h in latency[ALIAS_DURATION].items()}
    mirror_latency = {k: h.histogram() for k, h in latency[MIRROR_DURATION].items()}
    return AliasFiguresRead(
        {
            key: AliasFigures(key, by_class, alias_latency.get(key, LatencyHistogram()))
            for key, by_class in requests.items()
        },
        {
            key: _mirror_figures(key, values, mirror_latency.get(key, LatencyHistogram()))
            for key, values in mirrors.items()
        },
    )


@dataclass
class _Histogram:
    buckets: list[tuple[float, float]] = field(default_factory=list)
    sum_s: float = 0.0

    def histogram(self) -> LatencyHistogram:
        return LatencyHistogram(tuple(sorted(self.buckets)), self.sum_s)


def _read_histogram(samples: list[Any], into: dict[AliasNodeKey, _Histogram]) -> None:
    for sample in samples:
        key = _alias_node_key(sample.labels)
        if key is None:
            continue
        histogram = into.setdefault(key, _Histogram())
        if sample.name.endswith("_bucket"):
            histogram.buckets.append((float(sample.labels["le"]), float(sample.value)))
        elif sample.name.endswith("_sum"):
            histogram.sum_s = float(sample.value)


def _mirror_figures(
    key: AliasNodeKey, values: dict[str, float], latency: LatencyHistogram
) -> MirrorFigures:
    return MirrorFigures(
        key,
        sent=int(values.get("sent", 0)),
        dropped=int(values.get("dropped", 0)),
        errors=int(values.get("error", 0)),
        latency=latency,
        equal=int(values.get("equal", 0)),
        differ=int(values.get("differ", 0)),
        max_abs_difference=values.get("max_abs_difference", 0.0),
    )


def _alias_node_key(labels: dict[str, str]) -> AliasNodeKey | None:
    project, alias, node = labels.get("project"), labels.get("alias"), labels.get("node")
    if not (project and alias and node):
        return None
    return AliasNodeKey(ProjectName(project), AliasName(alias), NodeName(node))
