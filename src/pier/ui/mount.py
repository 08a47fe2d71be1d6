"""Putting the web UI on the control plane's app: its routes, its static files, the
security headers of every page, and errors shown as pages or in a page's flash area."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pier.api.deps import Services
from pier.domain.errors import PierError
from pier.ui import actions, calls, charts, pages
from pier.ui.assets import STATIC_DIR
from pier.ui.rendering import render
from pier.ui.session import Sessions, SignInNeeded

CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every answer outside /api (pure ASGI: streamed answers
    such as followed logs stay streamed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith("/api/"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


UI_PATHS: Final = ("/projects", "/sign-in", "/sign-out", "/static/")
"""Where the UI's routes are (and ``/``); everything else (the API, /metrics, /openapi.json)
answers its errors as JSON."""


def is_ui_request(request: Request) -> bool:
    path = request.url.path
    return path == "/" or path.startswith(UI_PATHS)


def install_ui(app: FastAPI, services: Services) -> None:
    """The UI's routes at / and /projects/..., its files under /static."""
    app.state.ui_sessions = Sessions(
        services.repo.principal_of, max_form_bytes=services.ui.max_form_bytes
    )
    for module in (actions, pages, calls, charts):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeaders)
    _show_errors_in_pages(app)


def _show_errors_in_pages(app: FastAPI) -> None:
    """UI requests get their errors as HTML (htmx: in the page's flash area); the API's
    stay JSON. Without a valid session, the browser goes to the sign-in page."""
    as_json = app.exception_handlers[PierError]

    async def pier_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PierError)
        if not is_ui_request(request):
            handler: Callable[[Request, Exception], Awaitable[Response]] = as_json  # type: ignore[assignment]
            return await handler(request, exc)
        session = None
        if request.headers.get("hx-request"):
            headers = {"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"}
            return render(
                request, "_flash.html", session, message=exc.message, is_error=True,
                headers=headers,
            )  # fmt: skip
        return render(
            request, "error.html", session, message=exc.message, status_code=exc.http_status
        )

    async def sign_in_needed(request: Request, _: Exception) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=200, headers={"HX-Redirect": "/sign-in"})
        return RedirectResponse("/sign-in", status_code=303)

    app.add_exception_handler(PierError, pier_error)
    app.add_exception_handler(SignInNeeded, sign_in_needed)
