"""Turning a template and its values into a page or an htmx fragment."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

import pier
from pier.api.deps import Services
from pier.ui.assets import TEMPLATES_DIR, missing_assets
from pier.ui.session import CSRF_FIELD, CSRF_HEADER, UiSession

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def age(moment: datetime, now: datetime | None = None) -> str:
    """How long ago, as people read it: 42s, 5m, 3h, 2d."""
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def size(count: int | float) -> str:
    """Bytes as KiB, MiB, GiB."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


templates.env.filters["age"] = age
templates.env.filters["size"] = size
templates.env.filters["tojson_pretty"] = lambda value: json.dumps(value, indent=2)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def render(
    request: Request,
    name: str,
    session: UiSession | None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """``name`` rendered with what every page shows (the signed-in principal, the CSRF
    token for forms and htmx, missing assets, the polling periods)."""
    ui = services_of(request).ui
    values = {
        "session": session,
        "csrf_field": CSRF_FIELD,
        "htmx_headers": json.dumps({CSRF_HEADER: session.csrf}) if session else "{}",
        "missing_assets": missing_assets(),
        "poll": f"every {ui.poll_s:g}s",
        "chart_poll_s": ui.chart_poll_s,
        "version": pier.__version__,
        **context,
    }
    return templates.TemplateResponse(
        request, name, values, status_code=status_code, headers=headers
    )
