"""Every error the REST API answers is ``{"error": {"code", "type", "message", "field"?}}``
(pier.domain.views.ErrorBody) with the status of its PierError class.

Framework errors become PierErrors too: a body that is not JSON is 400 ``bad_request``;
a value that does not fit the schema is 422 ``invalid_spec`` naming its field (a node
spec's fields by their path in the spec, ``min_instances``, as the service names them);
an unknown path is 404; a method the path does not have is 405 with ``Allow``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, Route

from pier.domain.errors import BadRequest, MethodNotAllowed, NotFound, PierError
from pier.domain.specs import invalid_spec_from, invalid_spec_from_error
from pier.domain.views import ErrorBody

log = structlog.get_logger("pier.api")

STATUS_DESCRIPTIONS: Final[Mapping[int, str]] = {
    400: "bad_request: the body is not JSON",
    401: "unauthorized: no bearer token, or not a valid one",
    403: "forbidden: the token's role in the project does not permit this, or "
    "quota_exceeded: the change would take the project past a quota (quota names it)",
    404: "not_found: no such project, node, model or secret (type says which)",
    409: "conflict: the name is taken, or the model (node) is in use by a node (alias)",
    413: "body_too_large: the upload is over the limit",
    422: "invalid_spec: a value is wrong; field names it",
    503: "store_unavailable (temporary, with Retry-After) or runtime_unavailable",
}

_LOCATIONS: Final = ("body", "query", "path", "header")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that can answer these error statuses."""
    return {
        status: {"model": ErrorBody, "description": STATUS_DESCRIPTIONS[status]}
        for status in statuses
    }


def error_response(exc: PierError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    all_headers = dict(headers or {})
    if exc.retry_after_s is not None:
        all_headers["Retry-After"] = str(exc.retry_after_s)
    return JSONResponse(
        {"error": exc.to_dict()}, status_code=exc.http_status, headers=all_headers or None
    )


def request_error(errors: Sequence[Any]) -> PierError:
    """The PierError for FastAPI's validation errors of a request (the first one)."""
    first = dict(errors[0])
    if first.get("type") == "json_invalid":
        return BadRequest(f"the body is not valid JSON: {first.get('msg', 'invalid')}")
    loc = [str(part) for part in first.get("loc", ())]
    if loc and loc[0] in _LOCATIONS:
        loc = loc[1:]
    if loc[:1] == ["spec"] and len(loc) > 1:
        loc = loc[1:]  # a node spec's fields are named by their path in the spec
    return invalid_spec_from_error({**first, "loc": loc or ["body"]})


def allowed_methods(routes: Iterable[BaseRoute], request: Request) -> list[str]:
    """The methods of every route whose path matches the request's."""
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    return sorted(methods)


def install_error_handlers(app: FastAPI, routers: Sequence[APIRouter] = ()) -> None:
    """``routers``: the app's routers, whose routes ``Allow`` lists."""

    @app.exception_handler(PierError)
    async def _pier_error(_: Request, exc: PierError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(request_error(exc.errors()))

    @app.exception_handler(ValidationError)
    async def _pydantic(_: Request, exc: ValidationError) -> JSONResponse:
        return error_response(invalid_spec_from(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 405:
            routes = [*app.router.routes, *(r for router in routers for r in router.routes)]
            allow = allowed_methods(routes, request)
            error = MethodNotAllowed(
                f"{request.method} is not a method of {request.url.path}; it has {', '.join(allow)}"
            )
            return error_response(error, {"Allow": ", ".join(allow)})
        if exc.status_code == 404:
            return error_response(
                NotFound(f"no such path {request.url.path!r}; the API is under /api/v1")
            )
        return JSONResponse(
            {"error": {"code": "http_error", "type": "http_error", "message": str(exc.detail)}},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The type and a plain traceback (no locals: they hold the request's headers and
        # the values being written); the logging setup masks anything token-like in it.
        log.error(
            "unexpected error",
            error_type=type(exc).__name__,
            method=request.method,
            path=request.url.path,
            exc_info=exc,
        )
        return error_response(PierError("internal error in pier; see the pier up log"))
