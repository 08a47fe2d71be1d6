"""Reading pier's own time series of a node: points of the store turned into the metric
asked for (rates, an error rate, latency quantiles from bucket counts, means)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from pier.domain.latency import LATENCY_BUCKETS_S
from pier.domain.views import SeriesLine, SeriesMetric, SeriesPoint, SeriesView
from pier.observability.series import Point, SeriesStore, quantile
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
}


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
        store = SeriesStore(self._path, retention_s=self._retention_s, max_series=1)
        try:
            lines = self._lines(store, project, node, metric, since, step, now)
            used = store.step_for(since, step, now)
        finally:
            store.close()
        return SeriesView(metric=metric, step=used, series=lines)

    def _lines(
        self,
        store: SeriesStore,
        project: str,
        node: str,
        metric: SeriesMetric,
        since: float,
        step: int,
        now: float,
    ) -> list[SeriesLine]:
        def read(field: str) -> dict[str, list[Point]]:
            return store.read(project, node, field, since=since, step=step, now=now)

        if metric in QUANTILES:
            q = QUANTILES[metric]
            return _to_lines(read("latency"), lambda p: _quantile(q, p))
        if metric is SeriesMetric.ERROR_RATE:
            errors = {p.t: p.total for ps in read("errors").values() for p in ps}
            return _to_lines(
                read("requests"),
                lambda p: errors.get(p.t, 0.0) / p.total if p.total else None,
            )
        return _to_lines(read(FIELDS[metric]), lambda p: p.total / p.weight if p.weight else None)


def _quantile(q: float, point: Point) -> float | None:
    return quantile(q, LATENCY_BUCKETS_S, point.buckets) if point.buckets else None


def _to_lines(
    series: dict[str, list[Point]], value: Callable[[Point], float | None]
) -> list[SeriesLine]:
    return [
        SeriesLine(
            instance=instance or None,
            points=[SeriesPoint(t=p.t, value=value(p)) for p in points],
        )
        for instance, points in sorted(series.items())
    ]
