"""Roles, what each permits, and the principal a request acts as.

A project role is a set of permissions, not a rank: a ``caller`` may call the project's
private nodes and aliases through the gateway and read nothing, a ``viewer`` reads
everything (never a secret's value) and calls nothing. A token carries a role on one
project; a token of a user or service account acts with what both its own role and its
owner's membership permit, so removing a member stops their tokens at once. The
installation admin (the token `pier up` writes) may do everything everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final


class Permission(StrEnum):
    READ = "read"
    """See the project's models, nodes, events, secrets' names, members."""
    CALL = "call"
    """Call the project's private nodes and aliases through the gateway."""
    WRITE = "write"
    """Create, change and delete models, nodes, aliases and secrets."""
    MANAGE = "manage"
    """Members, service accounts, tokens (and quotas, allowed configurations)."""


class Role(StrEnum):
    VIEWER = "viewer"
    CALLER = "caller"
    EDITOR = "editor"
    ADMIN = "admin"


INSTALLATION_ADMIN: Final = "installation-admin"
"""The role stored with an installation admin's token (no project)."""

P = Permission
ROLE_PERMISSIONS: Final[dict[Role, frozenset[Permission]]] = {
    Role.VIEWER: frozenset({P.READ}),
    Role.CALLER: frozenset({P.CALL}),
    Role.EDITOR: frozenset({P.READ, P.WRITE, P.CALL}),
    Role.ADMIN: frozenset({P.READ, P.WRITE, P.CALL, P.MANAGE}),
}


class PrincipalKind(StrEnum):
    USER = "user"
    SERVICE_ACCOUNT = "service-account"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as, and what it may do in which project."""

    name: str
    """For events and the audit log: a user's or service account's name, else the token's."""
    is_installation_admin: bool = False
    permissions: dict[str, frozenset[Permission]] = field(default_factory=dict)
    """By project: what this principal may do there (absent: nothing)."""

    def may(self, permission: Permission, project: str) -> bool:
        if self.is_installation_admin:
            return True
        return permission in self.permissions.get(project, frozenset())

    def sees(self, project: str) -> bool:
        """Whether the project is one this principal has any permission in."""
        return self.is_installation_admin or bool(self.permissions.get(project))


def token_permissions(
    token_role: str, *, owned: bool, owner_role: str | None
) -> frozenset[Permission]:
    """What a project token may do: its own role's permissions, narrowed for a token of a
    user or service account (``owned``) by that owner's role in the project
    (``owner_role`` None: the owner is no member there, so nothing)."""
    own = ROLE_PERMISSIONS[Role(token_role)]
    if not owned:
        return own
    if owner_role is None:
        return frozenset()
    return own & ROLE_PERMISSIONS[Role(owner_role)]
