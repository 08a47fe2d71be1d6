"""The node page's charts read pier's own series (the /series API's service) as one
JSON document per chart, every metric on the same time axis, as uPlot draws them."""

from __future__ import annotations

import time
from typing import Annotated, Any, Final

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
            label = view.metric.value + (f" {line.instance}" if line.instance else "")
            lines.append({"label": label, "values": values})
    return {"t": times, "lines": lines}


@router.get("/projects/{project}/nodes/{name}/series")
def chart_data(
    project: str,
    name: str,
    request: Request,
    session: SessionDep,
    metrics: Annotated[str, Query(max_length=200)],
    range: str = "15m",
) -> JSONResponse:
    services = services_of(request)
    if services.series is None:
        raise NotFound("this server keeps no series")
    if range not in RANGES:
        raise InvalidSpec("range", f"range must be one of {', '.join(RANGES)}")
    try:
        wanted = [SeriesMetric(m) for m in metrics.split(",") if m]
    except ValueError:
        raise InvalidSpec("metrics", f"metrics are among {', '.join(SeriesMetric)}") from None
    since_s, step = RANGES[range]
    now = time.time()
    views = [
        services.series.read(project, name, m, since=now - since_s, step=step, now=now)
        for m in wanted
    ]
    return JSONResponse(aligned(views))
