"""The audit log is written here, in one place: an ASGI middleware around every route.

Every request that asks for a change (any method but GET, HEAD and OPTIONS) becomes one
entry once it is answered, whatever the answer: made, refused (401, a quota, a bad
value) or failed. The entry holds who (the name the bearer check put on the request,
``anonymous`` if it found none), what (the route's operation and the names in its path),
when, from where (the client's address) and the outcome with the error's type. It never
reads the request's body or headers, so no secret's value or token can reach it; of the
answer it reads only an error body's ``type``. A gateway's reports (``report_gateway``,
each worker's several times a second) change no user's state: only refused ones are kept.

Sitting outside FastAPI's exception handlers, it sees the answer each one makes; an
error no handler answers is recorded as failed (500) and raised on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pier.domain.audit import AuditEntry, AuditOutcome
from pier.domain.errors import StoreUnavailable

log = structlog.get_logger("pier.api.audit")

READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
ANONYMOUS: Final = "anonymous"
UNAUDITED_WHEN_ANSWERED: Final = frozenset({"report_gateway"})
"""Actions kept in the audit log only when refused or failed."""
MAX_ERROR_BODY_BYTES: Final = 8192
"""Of an error answer, at most this much is read for its type; pier's are far smaller."""


class AuditMiddleware:
    """Records each change asked of the API through ``record``."""

    def __init__(self, app: ASGIApp, record: Callable[[AuditEntry], None]) -> None:
        self.app = app
        self._record = record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READ_METHODS:
            await self.app(scope, receive, send)
            return
        answer = _Answer()

        async def watch(message: Message) -> None:
            answer.see(message)
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self._keep(entry_for(scope, answer.status, answer.error_type()))

    def _keep(self, entry: AuditEntry) -> None:
        if entry.action in UNAUDITED_WHEN_ANSWERED and entry.status < 400:
            return
        try:
            self._record(entry)
        except StoreUnavailable as exc:  # the answer is sent; the change is not undone
            log.error("audit entry not kept", action=entry.action, reason=exc.message)


class _Answer:
    """What the middleware sees of a response: its status, and an error body's start."""

    def __init__(self) -> None:
        self.status = 500
        self._body = bytearray()

    def see(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        elif message["type"] == "http.response.body" and self.status >= 400:
            room = MAX_ERROR_BODY_BYTES - len(self._body)
            self._body += bytes(message.get("body", b""))[: max(room, 0)]

    def error_type(self) -> str | None:
        if self.status < 400:
            return None
        try:
            error = json.loads(self._body)["error"]
            kind = error.get("type") or error.get("code") if isinstance(error, dict) else None
        except (ValueError, KeyError, TypeError):
            kind = None
        return str(kind)[:63] if kind else f"http_{self.status}"


def entry_for(scope: Scope, status: int, error: str | None) -> AuditEntry:
    """The audit entry of a request answered with ``status``; the store gives its id."""
    params: dict[str, Any] = dict(scope.get("path_params") or {})
    project = params.pop("project", None)
    route = scope.get("route")
    client = scope.get("client")
    return AuditEntry(
        id=0,
        time=datetime.now(UTC),
        actor=str((scope.get("state") or {}).get("actor") or ANONYMOUS),
        project=str(project)[:63] if project is not None else None,
        action=str(getattr(route, "name", None) or "unknown_path"),
        target="/".join(str(v) for v in params.values())[:255] or None,
        method=str(scope["method"]),
        path=str(scope.get("path", ""))[:1024],
        client=str(client[0])[:64] if client else None,
        status=status,
        outcome=AuditOutcome.of_status(status),
        error=error,
    )
