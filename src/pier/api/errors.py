"""One handler turns any PierError into {"error": {"code", "message"}} with its status."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from pier.domain.errors import InvalidSpec, PierError
from pier.domain.specs import invalid_spec_from

log = structlog.get_logger("pier.api")


def error_response(exc: PierError) -> JSONResponse:
    headers = None if exc.retry_after_s is None else {"Retry-After": str(exc.retry_after_s)}
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PierError)
    async def _pier_error(_: Request, exc: PierError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        return error_response(InvalidSpec(".".join(loc) or "body", first.get("msg", "invalid")))

    @app.exception_handler(ValidationError)
    async def _pydantic(_: Request, exc: ValidationError) -> JSONResponse:
        return error_response(invalid_spec_from(exc))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code
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
        return JSONResponse(
            {
                "error": {
                    "code": "internal",
                    "message": "internal error in pier; see the pier up log",
                }
            },
            status_code=500,
        )
