"""Projects: created and deleted by the installation admin; deleted only when empty
(no nodes, aliases or models)."""

from __future__ import annotations

from pier.domain.errors import Conflict
from pier.domain.names import DEFAULT_PROJECT, validate_name
from pier.domain.roles import Principal
from pier.domain.views import ProjectView
from pier.store.repository import Repository


class ProjectService:
    def __init__(self, repo: Repository) -> None:
        self._repo = repo

    def create(self, name: str) -> ProjectView:
        validate_name(name, field="name")
        self._repo.add_project(name)
        return self.get(name)

    def list(self, principal: Principal) -> list[ProjectView]:
        """The projects ``principal`` has a role in."""
        return [self.get(name) for name, _ in self._repo.list_projects() if principal.sees(name)]

    def get(self, name: str) -> ProjectView:
        name, created_at = self._repo.get_project(name)
        held = self._repo.project_contents(name)
        return ProjectView(
            name=name, created_at=created_at, nodes=len(held["nodes"]),
            aliases=len(held["aliases"]), models=len(held["models"]),
        )  # fmt: skip

    def delete(self, name: str) -> None:
        """Delete the project with its secrets, members, service accounts and tokens;
        refused (409, naming them) while it has nodes, aliases or models."""
        self._repo.get_project(name)
        if name == DEFAULT_PROJECT:
            raise Conflict(f"project {DEFAULT_PROJECT!r} cannot be deleted")
        held = {kind: names for kind, names in self._repo.project_contents(name).items() if names}
        if held:
            what = "; ".join(f"{kind} {', '.join(names)}" for kind, names in held.items())
            raise Conflict(f"project {name!r} is not empty: it has {what}; delete them first")
        self._repo.remove_project(name)
