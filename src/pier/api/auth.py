"""Every request's check: its bearer token names a principal, the policy table names what
the route requires, the principal's role in the path's project must grant it.

A missing, unknown or expired token is 401; a valid token without the permission is 403
(the same whether or not the project exists, so a token learns nothing of others').
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog
from fastapi import Request
from starlette.routing import Route

from pier.api.policy import POLICY, Anyone, Requirement
from pier.domain.errors import Forbidden, Unauthorized
from pier.domain.roles import Principal
from pier.domain.tokens import token_digest

log = structlog.get_logger("pier.api")

PrincipalOf = Callable[[str, datetime], Principal | None]


def bearer_principal(request: Request, principal_of: PrincipalOf, now: datetime) -> Principal:
    """The principal of the request's bearer token, or Unauthorized."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    return token_principal(token.strip(), principal_of, now)


def token_principal(token: str, principal_of: PrincipalOf, now: datetime) -> Principal:
    """The principal of ``token`` (a bearer header's or the web UI's), or Unauthorized."""
    principal = principal_of(token_digest(token), now)
    if principal is None:
        raise Unauthorized("invalid, expired or revoked bearer token")
    return principal


def requirement(request: Request) -> Requirement:
    """What the matched route requires; a route the table lacks: the installation admin."""
    route = request.scope.get("route")
    path = route.path if isinstance(route, Route) else request.url.path
    need = POLICY.get((request.method, path))
    if need is None:
        log.warning("route missing from the policy", method=request.method, path=path)
        return Anyone.INSTALLATION_ADMIN
    return need


def check(principal: Principal, need: Requirement, project: str | None) -> None:
    """Raise Forbidden unless ``principal`` meets ``need`` (in ``project``, if any)."""
    if principal.is_installation_admin or need is Anyone.AUTHENTICATED:
        return
    if need is Anyone.INSTALLATION_ADMIN:
        raise Forbidden("only the installation admin may do this")
    if project is None or not principal.may(need, project):
        raise Forbidden(f"this token has no role in project {project!r} that permits {need}")
