"""The control plane's FastAPI app: thin routes over services, one error handler."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

import pier
from pier.api.auth import bearer_guard
from pier.api.deps import Services
from pier.api.errors import install_error_handlers
from pier.api.routes import models, nodes, secrets, system


def create_app(services: Services) -> FastAPI:
    """The REST API at /api/v1, OpenAPI at /openapi.json."""
    guard = bearer_guard(services.repo.token_digests)

    def authenticate(request: Request) -> None:
        request.state.actor = guard(request)

    app = FastAPI(
        title="pier",
        version=pier.__version__,
        description="Inference deployment platform: models and images as nodes.",
    )
    app.state.services = services
    install_error_handlers(app)
    for module in (system, models, nodes, secrets):
        app.include_router(module.router, dependencies=[Depends(authenticate)])

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def root() -> JSONResponse:
        return JSONResponse(
            {
                "name": "pier",
                "version": pier.__version__,
                "api": "/api/v1",
                "openapi": "/openapi.json",
            }
        )

    return app
