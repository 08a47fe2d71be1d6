"""The API's own request figures for the control plane's ``/metrics``: an ASGI middleware
counting each answered request by method, route and status, with its latency.

The route label is the route's path template (``/api/v1/projects/{project}/nodes``), never
the path asked for, so a caller cannot grow the series with names of their choosing;
anything no route matched is ``unmatched``.
"""

from __future__ import annotations

import time
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED: Final = "unmatched"
_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class RequestFigures:
    """The counters the middleware adds to, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "pier_api_requests", "Requests the control plane's API answered.",
            ["method", "route", "status"], registry=registry,
        )  # fmt: skip
        self.duration = Histogram(
            "pier_api_request_duration_seconds", "Time to answer an API request.",
            ["method", "route"], buckets=_BUCKETS_S, registry=registry,
        )  # fmt: skip


class RequestMetricsMiddleware:
    """Counts every HTTP request once it is answered (or fails: then as 500)."""

    def __init__(self, app: ASGIApp, figures: RequestFigures) -> None:
        self.app = app
        self._figures = figures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            method = scope["method"]
            self._figures.requests.labels(method, template, str(status)).inc()
            self._figures.duration.labels(method, template).observe(time.perf_counter() - started)
