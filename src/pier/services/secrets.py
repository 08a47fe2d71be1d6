"""Project secrets: stored server-side, listed by name and keys, never printed back."""

from __future__ import annotations

from pier.domain.names import validate_name
from pier.domain.spec_values import check_secret_value
from pier.domain.views import SecretInfo, SecretWritten
from pier.store.repository import Repository


class SecretService:
    def __init__(self, repo: Repository) -> None:
        self._repo = repo

    def put(self, project: str, name: str, value: dict[str, str], *, actor: str) -> SecretWritten:
        """Create or replace a secret, e.g. registry credentials {username, password}."""
        self._repo.require_project(project)
        validate_name(name, field="name")
        check_secret_value(value)
        created = self._repo.put_secret(project, name, value)
        verb = "created" if created else "replaced"
        self._repo.add_event(
            project, kind="secret_set", actor=actor, message=f"secret {name} {verb} by {actor}"
        )
        return SecretWritten(name=name, keys=sorted(value), created=created)

    def list(self, project: str) -> list[SecretInfo]:
        self._repo.require_project(project)
        return [
            SecretInfo(name=name, keys=keys, updated_at=at)
            for name, keys, at in self._repo.list_secrets(project)
        ]

    def delete(self, project: str, name: str, *, actor: str) -> None:
        self._repo.delete_secret(project, name)
        self._repo.add_event(
            project, kind="secret_deleted", actor=actor, message=f"secret {name} deleted by {actor}"
        )
