"""The node and alias pages' charts read pier's own series (the /series API's service)
as one JSON document per chart, every metric on the same time axis, as uPlot draws
them."""

from __future__ import annotations

import time
from typing import Annotated, Any, Final, Protocol

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from pier.domain.errors import InvalidSpec, NotFound
from pier.domain.views import SeriesMetric, SeriesView
from pier.ui.rendering import services_of
from pier.ui.session import SessionDep

router = APIRouter(include_in_schema=False)
RANGES: Final = {"15m": (900, 5), "1h": (3600, 5), "1d": (86400, 60)}
"""A chart's range: seconds back, and the finest step asked for."""


def aligned(views: list[SeriesView]) -> dict[str, Any]:
    """uPlot's columns: the union of the points' times, then one column per line (a
    metric, or a metric of one instance), None where a line has no point."""
    times = sorted({p.t for view in views for line in view.series for p in line.points})
    index = {t: i for i, t in enumerate(times)}
    lines = []
    for view in views:
        for line in view.series:
            values: list[float | None] = [None] * len(times)
            for p in line.points:
                values[index[p.t]] = p.value
            of = line.instance or line.node
            label = view.metric.value + (f" {of}" if of else "")
            lines.append({"label": label, "values": values})
    return {"t": times, "lines": lines}


Metrics = Annotated[str, Query(max_length=200)]


@router.get("/projects/{project}/nodes/{name}/series")
def chart_data(
    project: str, name: str, request: Request, session: SessionDep, metrics: Metrics,
    range: str = "15m",
) -> JSONResponse:  # fmt: skip
    services = services_of(request)
    series = services.series
    if series is None:
        raise NotFound("this server keeps no series")
    return _chart(series.read, project, name, metrics, range)


@router.get("/projects/{project}/aliases/{name}/series")
def alias_chart_data(
    project: str, name: str, request: Request, session: SessionDep, metrics: Metrics,
    range: str = "15m",
) -> JSONResponse:  # fmt: skip
    services = services_of(request)
    series = services.series
    if series is None:
        raise NotFound("this server keeps no series")
    return _chart(series.read_alias, project, name, metrics, range)


def _chart(read: Read, project: str, name: str, metrics: str, range: str) -> JSONResponse:
    if range not in RANGES:
        raise InvalidSpec("range", f"range must be one of {', '.join(RANGES)}")
    try:
        wanted = [SeriesMetric(m) for m in metrics.split(",") if m]
    except ValueError:
        raise InvalidSpec("metrics", f"metrics are among {', '.join(SeriesMetric)}") from None
    since_s, step = RANGES[range]
    now = time.time()
    views = [read(project, name, m, since=now - since_s, step=step, now=now) for m in wanted]
    return JSONResponse(aligned(views))


class Read(Protocol):
    """``SeriesService.read`` or ``read_alias``."""

    def __call__(
        self, project: str, name: str, metric: SeriesMetric, /, *, since: float, step: int,
        now: float,
    ) -> SeriesView: ...  # fmt: skip
