"""Reading pier's own time series of a node or an alias: points of the store turned into
the metric asked for (rates, an error rate, latency quantiles from bucket counts,
means). An alias's figures are its nodes' added up, point by point, beside each node's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from pier.domain.errors import InvalidSpec
from pier.domain.latency import LATENCY_BUCKETS_S
from pier.domain.views import SeriesLine, SeriesMetric, SeriesPoint, SeriesView
from pier.observability.series import ALIAS_FIELD, Point, SeriesStore, quantile
from pier.store.repository import Repository

QUANTILES: Final = {SeriesMetric.P50: 0.5, SeriesMetric.P95: 0.95, SeriesMetric.P99: 0.99}
FIELDS: Final = {
    SeriesMetric.REQUESTS_PER_S: "requests",
    SeriesMetric.ERRORS_PER_S: "errors",
    SeriesMetric.IN_FLIGHT: "in_flight",
    SeriesMetric.INSTANCES: "instances",
    SeriesMetric.INSTANCES_HEALTHY: "instances_healthy",
    SeriesMetric.CPU_PERCENT: "cpu_percent",
    SeriesMetric.MEMORY_BYTES: "memory_bytes",
    SeriesMetric.BYTES_IN_PER_S: "bytes_in",
    SeriesMetric.BYTES_OUT_PER_S: "bytes_out",
    SeriesMetric.INFERENCES_PER_S: "inferences",
    SeriesMetric.QUEUE_S: "queue_s",
    SeriesMetric.COMPUTE_S: "compute_s",
}
ALIAS_METRICS: Final = (
    SeriesMetric.REQUESTS_PER_S,
    SeriesMetric.ERRORS_PER_S,
    SeriesMetric.ERROR_RATE,
    *QUANTILES,
    SeriesMetric.BYTES_IN_PER_S,
    SeriesMetric.BYTES_OUT_PER_S,
)
"""What the gateway counts of an alias's requests (per node behind it)."""

Reader = Callable[[str], dict[str, list[Point]]]
"""Points of a field by instance (or, for an alias, by node)."""


class SeriesService:
    def __init__(self, repo: Repository, path: Path, retention_s: Sequence[float]) -> None:
        self._repo = repo
        self._path = path
        self._retention_s = tuple(retention_s)

    def read(
        self, project: str, node: str, metric: SeriesMetric, *, since: float, step: int, now: float
    ) -> SeriesView:
        """``metric`` of the node from ``since`` on, in points of ``step`` seconds or more."""
        self._repo.get_node(project, node)  # 404 naming the node
        return self._view(project, node, "", metric, since, step, now)

    def read_alias(
        self, project: str, alias: str, metric: SeriesMetric, *, since: float, step: int, now: float
    ) -> SeriesView:
        """``metric`` of the alias (all its nodes) and of each node behind it."""
        if metric not in ALIAS_METRICS:
            kept = ", ".join(ALIAS_METRICS)
            raise InvalidSpec("metric", f"an alias's series are {kept}, not {metric}")
        self._repo.get_alias(project, alias)  # 404 naming the alias
        view = self._view(project, alias, ALIAS_FIELD, metric, since, step, now)
        for line in view.series:
            line.node, line.instance = line.instance, None
        return view

    def _view(
        self,
        project: str,
        name: str,
        prefix: str,
        metric: SeriesMetric,
        since: float,
        step: int,
        now: float,
    ) -> SeriesView:
        store = SeriesStore(self._path, retention_s=self._retention_s, max_series=1)
        try:

            def read(field: str) -> dict[str, list[Point]]:
                points = store.read(project, name, prefix + field, since=since, step=step, now=now)
                return _with_total(points) if prefix else points

            lines = _lines(read, metric)
            used = store.step_for(since, step, now)
        finally:
            store.close()
        return SeriesView(metric=metric, step=used, series=lines)


def _lines(read: Reader, metric: SeriesMetric) -> list[SeriesLine]:
    if metric in QUANTILES:
        q = QUANTILES[metric]
        return _to_lines(read("latency"), lambda p: _quantile(q, p))
    if metric is SeriesMetric.ERROR_RATE:
        errors = read("errors")
        requests = sorted(read("requests").items())
        return [_error_rates(i, ps, errors.get(i, [])) for i, ps in requests]
    return _to_lines(read(FIELDS[metric]), lambda p: p.total / p.weight if p.weight else None)


def _error_rates(instance: str, requests: list[Point], errors: list[Point]) -> SeriesLine:
    failed = {p.t: p.total for p in errors}
    return _line(instance, requests, lambda p: failed.get(p.t, 0.0) / p.total if p.total else None)


def _with_total(series: dict[str, list[Point]]) -> dict[str, list[Point]]:
    """``series`` by node, and under "" every node's points added up: totals and buckets
    add, the seconds covered are the longest any node's point covered (the nodes are
    sampled together), so rates add up too."""
    total: dict[int, Point] = {}
    for points in series.values():
        for p in points:
            mine = total.setdefault(p.t, Point(p.t, 0.0, 0.0))
            mine.add(p.total, 0.0, p.buckets)
            mine.weight = max(mine.weight, p.weight)
    if not series:
        return {}
    return {**series, "": [total[t] for t in sorted(total)]}


def _quantile(q: float, point: Point) -> float | None:
    return quantile(q, LATENCY_BUCKETS_S, point.buckets) if point.buckets else None


def _line(instance: str, points: list[Point], value: Callable[[Point], float | None]) -> SeriesLine:
    return SeriesLine(
        instance=instance or None, points=[SeriesPoint(t=p.t, value=value(p)) for p in points]
    )


def _to_lines(
    series: dict[str, list[Point]], value: Callable[[Point], float | None]
) -> list[SeriesLine]:
    return [_line(instance, points, value) for instance, points in sorted(series.items())]
