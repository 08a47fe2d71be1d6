"""Who may do what in a project: members, service accounts and their tokens.

A token's value is made here and returned once; the store keeps its SHA-256 only.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from pier.domain.errors import Conflict, InvalidSpec
from pier.domain.names import validate_name
from pier.domain.requests import TokenCreate
from pier.domain.tokens import token_digest
from pier.domain.views import MemberView, ServiceAccountView, TokenCreated, TokenInfo
from pier.settings import AuthSettings
from pier.store.repository import Repository, utcnow


class AccessService:
    def __init__(self, repo: Repository, settings: AuthSettings) -> None:
        self._repo = repo
        self._settings = settings

    def add_member(self, project: str, principal: str, role: str) -> MemberView:
        self._repo.require_project(project)
        validate_name(principal, field="principal")
        return self._repo.add_member(project, principal, role)

    def members(self, project: str) -> list[MemberView]:
        self._repo.require_project(project)
        return self._repo.list_members(project)

    def remove_member(self, project: str, principal: str) -> None:
        self._repo.remove_member(project, principal)

    def create_service_account(self, project: str, name: str, role: str) -> ServiceAccountView:
        self._repo.require_project(project)
        validate_name(name, field="name")
        return self._repo.add_service_account(project, name, role)

    def service_accounts(self, project: str) -> list[ServiceAccountView]:
        self._repo.require_project(project)
        return self._repo.list_service_accounts(project)

    def delete_service_account(self, project: str, name: str) -> None:
        self._repo.remove_service_account(project, name)

    def create_token(self, project: str, body: TokenCreate) -> TokenCreated:
        """A new token with ``body.role`` in the project; its value is in the answer only."""
        self._repo.require_project(project)
        for field in ("name", "principal"):
            if (given := getattr(body, field)) is not None:
                validate_name(given, field=field)
        limit = self._settings
        if body.expires_in_s is not None and body.expires_in_s > limit.max_token_lifetime_s:
            raise InvalidSpec(
                "expires_in_s",
                f"{body.expires_in_s} s is longer than auth.max_token_lifetime_s "
                f"({limit.max_token_lifetime_s} s)",
            )
        if self._repo.count_tokens(project) >= limit.max_tokens_per_project:
            raise Conflict(
                f"project {project!r} has {limit.max_tokens_per_project} tokens, the most "
                "auth.max_tokens_per_project allows; revoke one first"
            )
        value = secrets.token_urlsafe(32)
        expires_at = None
        if body.expires_in_s is not None:
            expires_at = utcnow() + timedelta(seconds=body.expires_in_s)
        info = self._repo.add_token(
            name=body.name or body.principal or "token", sha256=token_digest(value),
            role=body.role, project=project, principal=body.principal, expires_at=expires_at,
        )  # fmt: skip
        return TokenCreated(**info.model_dump(), token=value)

    def tokens(self, project: str) -> list[TokenInfo]:
        self._repo.require_project(project)
        return self._repo.list_tokens(project)

    def revoke_token(self, project: str, token_id: int) -> None:
        self._repo.remove_token(project, token_id)
