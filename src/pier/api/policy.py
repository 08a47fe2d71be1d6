"""The one table saying what each REST route requires of the token that calls it.

Keys are (method, path template) exactly as the routes declare them; a route of a
project (``{project}`` in its path) requires a permission in that project. A route not
in the table is for the installation admin alone (and tests/api fail until it is added).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, TypeAlias

from pier.domain.roles import Permission


class Anyone(StrEnum):
    AUTHENTICATED = "authenticated"
    """Any valid token."""
    INSTALLATION_ADMIN = "installation-admin"
    """The installation's admin only."""


Requirement: TypeAlias = Permission | Anyone

_P = "/api/v1/projects/{project}"
_U = "/projects/{project}"
R, W, M = Permission.READ, Permission.WRITE, Permission.MANAGE

POLICY: Final[dict[tuple[str, str], Requirement]] = {
    ("GET", "/api/v1/info"): Anyone.AUTHENTICATED,
    ("GET", "/api/v1/configurations"): Anyone.AUTHENTICATED,
    ("GET", "/api/v1/routes"): Anyone.INSTALLATION_ADMIN,
    ("GET", "/api/v1/gateways"): Anyone.INSTALLATION_ADMIN,
    ("POST", "/api/v1/gateways/{gateway_id}/report"): Anyone.INSTALLATION_ADMIN,
    ("GET", "/metrics"): Anyone.INSTALLATION_ADMIN,
    ("GET", "/api/v1/controller"): Anyone.INSTALLATION_ADMIN,
    ("GET", "/api/v1/projects"): Anyone.AUTHENTICATED,
    ("POST", "/api/v1/projects"): Anyone.INSTALLATION_ADMIN,
    ("GET", _P): R,
    ("DELETE", _P): Anyone.INSTALLATION_ADMIN,
    ("GET", f"{_P}/models"): R,
    ("GET", f"{_P}/models/{{name}}"): R,
    ("POST", f"{_P}/models/{{name}}"): W,
    ("DELETE", f"{_P}/models/{{name}}"): W,
    ("GET", f"{_P}/nodes"): R,
    ("POST", f"{_P}/nodes"): W,
    ("GET", f"{_P}/nodes/{{name}}"): R,
    ("PATCH", f"{_P}/nodes/{{name}}"): W,
    ("DELETE", f"{_P}/nodes/{{name}}"): W,
    ("POST", f"{_P}/nodes/{{name}}/suspend"): W,
    ("POST", f"{_P}/nodes/{{name}}/resume"): W,
    ("GET", f"{_P}/nodes/{{name}}/instances"): R,
    ("GET", f"{_P}/nodes/{{name}}/stats"): R,
    ("GET", f"{_P}/nodes/{{name}}/events"): R,
    ("GET", f"{_P}/nodes/{{name}}/logs"): R,
    ("GET", f"{_P}/nodes/{{name}}/metrics"): R,
    ("GET", f"{_P}/nodes/{{name}}/series"): R,
    ("GET", f"{_P}/aliases"): R,
    ("POST", f"{_P}/aliases"): W,
    ("GET", f"{_P}/aliases/{{name}}"): R,
    ("GET", f"{_P}/aliases/{{name}}/series"): R,
    ("PUT", f"{_P}/aliases/{{name}}"): W,
    ("PATCH", f"{_P}/aliases/{{name}}"): W,
    ("DELETE", f"{_P}/aliases/{{name}}"): W,
    ("POST", f"{_P}/aliases/{{name}}/rollout"): W,
    ("GET", f"{_P}/aliases/{{name}}/rollout"): R,
    ("POST", f"{_P}/aliases/{{name}}/rollout/abort"): W,
    ("GET", f"{_P}/secrets"): R,
    ("PUT", f"{_P}/secrets/{{name}}"): W,
    ("DELETE", f"{_P}/secrets/{{name}}"): W,
    ("GET", f"{_P}/members"): R,
    ("POST", f"{_P}/members"): M,
    ("DELETE", f"{_P}/members/{{principal}}"): M,
    ("GET", f"{_P}/service-accounts"): R,
    ("POST", f"{_P}/service-accounts"): M,
    ("DELETE", f"{_P}/service-accounts/{{name}}"): M,
    ("GET", f"{_P}/tokens"): M,
    ("POST", f"{_P}/tokens"): M,
    ("DELETE", f"{_P}/tokens/{{token_id}}"): M,
    ("GET", f"{_P}/limits"): R,
    ("PUT", f"{_P}/limits"): M,
    ("GET", "/api/v1/audit"): Anyone.INSTALLATION_ADMIN,
    ("POST", "/api/v1/secrets/rotate-key"): Anyone.INSTALLATION_ADMIN,
    # the web UI (pier.ui): the same permissions as the REST routes it stands for
    ("GET", "/"): Anyone.AUTHENTICATED,
    ("POST", "/sign-out"): Anyone.AUTHENTICATED,
    ("GET", _U): R,
    ("GET", f"{_U}/nodes-table"): R,
    ("GET", f"{_U}/models"): R,
    ("POST", f"{_U}/models"): W,
    ("GET", f"{_U}/nodes/new"): W,
    ("POST", f"{_U}/nodes"): W,
    ("GET", f"{_U}/nodes/{{name}}"): R,
    ("GET", f"{_U}/nodes/{{name}}/summary"): R,
    ("GET", f"{_U}/nodes/{{name}}/instances"): R,
    ("GET", f"{_U}/nodes/{{name}}/events"): R,
    ("GET", f"{_U}/nodes/{{name}}/logs"): R,
    ("GET", f"{_U}/nodes/{{name}}/series"): R,
    ("GET", f"{_U}/aliases/{{name}}/series"): R,
    ("POST", f"{_U}/nodes/{{name}}/settings"): W,
    ("POST", f"{_U}/nodes/{{name}}/suspend"): W,
    ("POST", f"{_U}/nodes/{{name}}/resume"): W,
    ("POST", f"{_U}/nodes/{{name}}/delete"): W,
    ("POST", f"{_U}/nodes/{{name}}/request"): Permission.CALL,
    ("GET", f"{_U}/aliases/{{name}}"): R,
    ("GET", f"{_U}/aliases/{{name}}/status"): R,
    ("POST", f"{_U}/aliases/{{name}}/shares"): W,
}
