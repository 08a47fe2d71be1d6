"""Project secrets: stored server-side, listed by name and keys, never printed back."""

from __future__ import annotations

from typing import Protocol

from pier.domain.errors import RuntimeUnavailable
from pier.domain.event_kinds import EventKind
from pier.domain.names import validate_name
from pier.domain.spec_values import check_secret_value
from pier.domain.views import KeyRotated, SecretInfo, SecretWritten
from pier.store.repository import Repository


class KeyRing(Protocol):
    """The keys that seal secrets at rest (pier.secret_keys.SecretKeys)."""

    def rotate(self, store: Repository) -> KeyRotated: ...


class SecretService:
    def __init__(self, repo: Repository, keys: KeyRing | None = None) -> None:
        self._repo = repo
        self._keys = keys

    def rotate_key(self) -> KeyRotated:
        """Seal every secret value again with a new key."""
        if self._keys is None:
            raise RuntimeUnavailable("this store's secrets key is not kept: nothing to rotate")
        return self._keys.rotate(self._repo)

    def put(self, project: str, name: str, value: dict[str, str], *, actor: str) -> SecretWritten:
        """Create or replace a secret, e.g. registry credentials {username, password}."""
        self._repo.require_project(project)
        validate_name(name, field="name")
        check_secret_value(value)
        created = self._repo.put_secret(project, name, value)
        verb = "created" if created else "replaced"
        self._repo.add_event(
            project,
            kind=EventKind.SECRET_SET,
            actor=actor,
            message=f"secret {name} {verb} by {actor}",
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
            project,
            kind=EventKind.SECRET_DELETED,
            actor=actor,
            message=f"secret {name} deleted by {actor}",
        )
