"""The Client's calls on projects and who may use them: members, service accounts,
tokens, allowed configurations and quotas, secrets, the audit log."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pier.client.base import ClientBase, typed_answer
from pier.domain.audit import AuditEntry, AuditPage
from pier.domain.quotas import ProjectLimits, ProjectLimitsView
from pier.domain.views import (
    KeyRotated,
    MemberList,
    MemberView,
    ProjectList,
    ProjectView,
    SecretInfo,
    SecretList,
    SecretWritten,
    ServiceAccountList,
    ServiceAccountView,
    TokenCreated,
    TokenInfo,
    TokenList,
)


class AccessCalls(ClientBase):
    """Projects, access, limits, secrets and the audit log."""

    def put_secret(self, name: str, value: Mapping[str, str]) -> SecretWritten:
        """Create or replace a project secret (e.g. registry username and password)."""
        path = self._project_path("secrets", name)
        return typed_answer(self._request("PUT", path, json={"value": dict(value)}), SecretWritten)

    def list_secrets(self) -> list[SecretInfo]:
        """Names and keys of the project's secrets; values never come back."""
        return typed_answer(self._request("GET", self._project_path("secrets")), SecretList).secrets

    def delete_secret(self, name: str) -> None:
        """Delete a project secret."""
        self._request("DELETE", self._project_path("secrets", name))

    # -- projects and access ----------------------------------------------------------

    def create_project(self, name: str) -> ProjectView:
        """Create a project (installation admin)."""
        return typed_answer(
            self._request("POST", "/api/v1/projects", json={"name": name}), ProjectView
        )

    def list_projects(self) -> list[ProjectView]:
        """The projects this client's token has a role in."""
        return typed_answer(self._request("GET", "/api/v1/projects"), ProjectList).projects

    def get_project(self, name: str | None = None) -> ProjectView:
        """A project (default: this client's) and how much it holds."""
        path = f"/api/v1/projects/{quote(name or self.project, safe='')}"
        return typed_answer(self._request("GET", path), ProjectView)

    def delete_project(self, name: str) -> None:
        """Delete an empty project (installation admin); Conflict names what it still has."""
        self._request("DELETE", f"/api/v1/projects/{quote(name, safe='')}")

    def add_member(self, principal: str, role: str) -> MemberView:
        """Give a user (made on first use) or service account ``role`` in the project."""
        body = {"principal": principal, "role": role}
        return typed_answer(
            self._request("POST", self._project_path("members"), json=body), MemberView
        )

    def list_members(self) -> list[MemberView]:
        return typed_answer(self._request("GET", self._project_path("members")), MemberList).members

    def remove_member(self, principal: str) -> None:
        """Take the member's role away: their tokens for the project stop working."""
        self._request("DELETE", self._project_path("members", principal))

    def create_service_account(self, name: str, role: str) -> ServiceAccountView:
        path, body = self._project_path("service-accounts"), {"name": name, "role": role}
        return typed_answer(self._request("POST", path, json=body), ServiceAccountView)

    def list_service_accounts(self) -> list[ServiceAccountView]:
        answer = self._request("GET", self._project_path("service-accounts"))
        return typed_answer(answer, ServiceAccountList).service_accounts

    def delete_service_account(self, name: str) -> None:
        """Delete a service account with its tokens."""
        self._request("DELETE", self._project_path("service-accounts", name))

    def create_token(
        self,
        role: str,
        *,
        name: str | None = None,
        principal: str | None = None,
        expires_in_s: int | None = None,
    ) -> TokenCreated:
        """A new token with ``role`` in the project; ``.token`` is its value, shown once."""
        body = {"role": role, "name": name, "principal": principal, "expires_in_s": expires_in_s}
        answer = self._request("POST", self._project_path("tokens"), json=body)
        return typed_answer(answer, TokenCreated)

    def list_tokens(self) -> list[TokenInfo]:
        """The project's tokens, never their values."""
        return typed_answer(self._request("GET", self._project_path("tokens")), TokenList).tokens

    def revoke_token(self, token_id: int) -> None:
        self._request("DELETE", self._project_path("tokens", str(token_id)))

    # -- allowed configurations and quotas ------------------------------------------

    def project_limits(self) -> ProjectLimitsView:
        """The project's allowed configurations and quotas, with what its nodes use."""
        return typed_answer(self._request("GET", self._project_path("limits")), ProjectLimitsView)

    def set_project_limits(self, limits: ProjectLimits | Mapping[str, Any]) -> ProjectLimitsView:
        """Replace the project's allowed configurations and quotas (None: no limit)."""
        body = limits if isinstance(limits, ProjectLimits) else ProjectLimits(**limits)
        response = self._request("PUT", self._project_path("limits"), json=body.model_dump())
        return typed_answer(response, ProjectLimitsView)

    # -- audit log ------------------------------------------------------------------

    def audit(
        self,
        *,
        project: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> AuditPage:
        """One page of the audit log, newest first; filters given narrow it. Pass the
        page's ``next_before`` as ``before`` for the next one."""
        given = {
            "project": project, "actor": actor, "action": action, "outcome": outcome,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None, "before": before, "limit": limit,
        }  # fmt: skip
        params = {k: v for k, v in given.items() if v is not None}
        return typed_answer(self._request("GET", "/api/v1/audit", params=params), AuditPage)

    def iter_audit(self, **filters: Any) -> Iterator[AuditEntry]:
        """Every audit entry matching ``filters`` (those of ``audit``), newest first."""
        before = filters.pop("before", None)
        while True:
            page = self.audit(**filters, before=before)
            yield from page.entries
            if page.next_before is None:
                return
            before = page.next_before

    def rotate_secrets_key(self) -> KeyRotated:
        """Seal every secret value again with a new key (the installation's, not a project's)."""
        return typed_answer(self._request("POST", "/api/v1/secrets/rotate-key"), KeyRotated)
