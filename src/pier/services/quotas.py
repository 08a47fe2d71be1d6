"""Allowed configurations and quotas per project: set, shown with use, checked on change.

The rules are pure (pier.domain.quotas); this module reads the claims from the store.
"""

from __future__ import annotations

from pier.domain.configurations import get_configuration
from pier.domain.errors import InvalidSpec, PierError
from pier.domain.quotas import (
    ProjectLimits,
    ProjectLimitsView,
    Usage,
    check_configuration,
    check_fits,
    node_claim,
    usage_of,
)
from pier.domain.specs import NodeSpec
from pier.store.repository import Repository


class QuotaService:
    def __init__(self, repo: Repository) -> None:
        self._repo = repo

    def get(self, project: str) -> ProjectLimitsView:
        """The project's limits and what its nodes claim now."""
        self._repo.require_project(project)
        limits = self._repo.get_project_limits(project)
        return ProjectLimitsView(project=project, limits=limits, usage=self.usage(project))

    def set(self, project: str, limits: ProjectLimits) -> ProjectLimitsView:
        """Replace the project's limits; nodes already past a new quota keep running,
        only their growth stops (and updates that would need more are refused)."""
        self._repo.require_project(project)
        for name in limits.configurations or []:
            try:
                get_configuration(name)
            except PierError as exc:
                raise InvalidSpec("configurations", exc.message.partition(": ")[2]) from None
        self._repo.set_project_limits(project, limits)
        return self.get(project)

    def usage(self, project: str, *, besides: str | None = None) -> Usage:
        """What the project's nodes (but ``besides``) claim: their target, at least their
        minimum; nodes being deleted or suspended claim nothing."""
        return usage_of(
            node_claim(
                n.spec.configuration, min_instances=n.spec.min_instances, target=n.target_instances
            )
            for n in self._repo.list_nodes(project)
            if n.name != besides and not (n.deleting or n.suspended)
        )

    def check_node(self, project: str, name: str, spec: NodeSpec) -> None:
        """Refuse a node ``spec`` whose configuration the project does not allow, or whose
        ``min_instances`` do not fit beside the other nodes (QuotaExceeded names the quota)."""
        limits = self._repo.get_project_limits(project)
        if limits == ProjectLimits():
            return
        check_configuration(project, limits, spec.configuration)
        claim = node_claim(spec.configuration, min_instances=spec.min_instances, target=None)
        check_fits(project, limits, self.usage(project, besides=name), claim)
