"""The control plane's FastAPI app: thin routes over services, one error handler."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request, Security
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry

import pier
from pier.api.audit import AuditMiddleware
from pier.api.auth import bearer_principal, check, requirement
from pier.api.deps import Services
from pier.api.errors import install_error_handlers
from pier.api.request_metrics import RequestFigures, RequestMetricsMiddleware
from pier.api.routes import (
    access,
    aliases,
    audit,
    gateways,
    metrics,
    models,
    nodes,
    projects,
    quotas,
    rollouts,
    secrets,
    system,
)
from pier.services.control_metrics import StoreCollector
from pier.services.traffic_metrics import TrafficCollector
from pier.store.repository import utcnow
from pier.ui.mount import install_ui

BEARER = HTTPBearer(
    auto_error=False,
    description="The admin token `pier up` writes to <data dir>/admin.token, or a token "
    "`pier token create` made (its role in the path's project decides what it may do).",
)


def operation_id(route: APIRoute) -> str:
    """A route's operationId is its function's name (create_node, get_node...): what a
    generated client names its functions."""
    return route.name


def create_app(services: Services) -> FastAPI:
    """The REST API at /api/v1, OpenAPI at /openapi.json, the web UI at /."""

    def authenticate(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    ) -> None:
        """Declares the bearer scheme in /openapi.json; checks the token against the
        policy table for the route and the path's project."""
        principal = bearer_principal(request, services.repo.principal_of, utcnow())
        check(principal, requirement(request), request.path_params.get("project"))
        request.state.principal = principal
        request.state.actor = principal.name

    app = FastAPI(
        title="pier",
        version=pier.__version__,
        description="Inference deployment platform: models and images as nodes, published "
        "behind aliases.",
        generate_unique_id_function=operation_id,
    )
    app.state.services = services
    app.add_middleware(AuditMiddleware, record=services.audit.record)
    registry = CollectorRegistry()
    app.add_middleware(RequestMetricsMiddleware, figures=RequestFigures(registry))
    registry.register(StoreCollector(services.repo))
    if services.traffic is not None:
        registry.register(TrafficCollector(services.repo, services.traffic))
    app.state.metrics_registry = registry
    routers = [
        module.router
        for module in (system, projects, access, models, nodes, aliases, rollouts, secrets)
    ]
    routers += [secrets.keys_router, audit.router, quotas.router, metrics.router]
    routers += [gateways.router]
    install_error_handlers(app, routers)
    for router in routers:
        app.include_router(router, dependencies=[Depends(authenticate)])

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:  # on the loop: no worker thread to wait for
        return {"status": "ok"}

    install_ui(app, services)
    return app
