"""Alias use cases: create, read, set, delete. The controller publishes them as routes.

An alias may only name nodes of its project that exist and are not being deleted; a
node an alias names cannot be deleted (NodeService.delete refuses it), so a published
alias never points at a node that is gone.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from pier.domain.aliases import AliasSpec, alias_route, effective_shares, parse_alias_spec
from pier.domain.errors import InvalidSpec, RolloutRunning, did_you_mean
from pier.domain.event_kinds import EventKind
from pier.domain.merge_patch import merge_patch
from pier.domain.names import validate_name
from pier.domain.node_status import NodeStatus
from pier.domain.records import AliasRecord
from pier.domain.rollouts import RolloutPhase
from pier.domain.views import AliasNodeView, AliasView, MirrorFiguresView, NodeView
from pier.services.routes import MirrorFiguresSource, RouteSource
from pier.services.views import node_view, rollout_view
from pier.store.repository import Repository


class AliasService:
    def __init__(
        self,
        repo: Repository,
        *,
        routes: RouteSource | None = None,
        mirrors: MirrorFiguresSource | None = None,
    ) -> None:
        self._repo = repo
        self._routes = routes
        """Says whether the gateway serves an alias as it is now; None: no gateway."""
        self._mirrors = mirrors
        """What the gateway saw of the aliases' mirrors; None: no gateway."""

    def create(
        self, project: str, name: str, spec: AliasSpec | Mapping[str, Any], *, actor: str
    ) -> AliasView:
        """Validate and store a new alias; the controller publishes its route."""
        self._repo.require_project(project)
        validate_name(name, field="name")
        with self._repo.unit_of_work():  # the nodes checked, the alias and its event
            parsed = self._validated(project, spec)
            alias = self._repo.add_alias(project, name, parsed)
            self._event(alias, EventKind.ALIAS_CREATED, actor, f"alias {name} created by {actor}")
        return self._view(alias)

    def list(self, project: str) -> builtins.list[AliasView]:
        self._repo.require_project(project)
        nodes = self._nodes(project)
        return [self._view(a, nodes) for a in self._repo.list_aliases(project)]

    def get(self, project: str, name: str) -> AliasView:
        return self._view(self._repo.get_alias(project, name))

    def put(
        self, project: str, name: str, spec: AliasSpec | Mapping[str, Any], *, actor: str
    ) -> AliasView:
        """Replace the alias's whole spec (atomic for every gateway worker)."""
        with self._repo.unit_of_work():
            alias = self._repo.get_alias(project, name)
            return self._replace(alias, self._validated(project, spec), actor=actor)

    def update(
        self, project: str, name: str, changes: Mapping[str, Any], *, actor: str
    ) -> AliasView:
        """Apply ``changes``, a JSON Merge Patch of the spec, to the stored spec."""
        with self._repo.unit_of_work():
            alias = self._repo.get_alias(project, name)
            merged = merge_patch(alias.spec.model_dump(mode="json"), dict(changes))
            return self._replace(alias, self._validated(project, merged), actor=actor)

    def delete(self, project: str, name: str, *, actor: str) -> None:
        """Forget the alias; the gateway stops serving it with the next route table."""
        with self._repo.unit_of_work():
            alias = self._repo.get_alias(project, name)
            self._repo.remove_alias(project, name)
            self._event(alias, EventKind.ALIAS_DELETED, actor, f"alias {name} deleted by {actor}")

    def _replace(self, alias: AliasRecord, spec: AliasSpec, *, actor: str) -> AliasView:
        if spec == alias.spec:
            return self._view(alias)
        rollout = self._repo.get_rollout(alias.project, alias.name)
        running = rollout is not None and rollout.state.phase is RolloutPhase.RUNNING
        if running and rollout is not None and spec.nodes != alias.spec.nodes:
            raise RolloutRunning(alias.project, alias.name, rollout.state.plan.to_node)
        updated = self._repo.update_alias_spec(alias.project, alias.name, spec)
        shares = ", ".join(f"{s.node}={s.share}" for s in spec.nodes)
        self._event(
            updated, EventKind.ALIAS_UPDATED, actor,
            f"alias {alias.name} set by {actor}: {shares}",
        )  # fmt: skip
        return self._view(updated)

    def _validated(self, project: str, spec: AliasSpec | Mapping[str, Any]) -> AliasSpec:
        """The spec, checked; each node it names must exist and not be Deleting."""
        parsed = spec if isinstance(spec, AliasSpec) else parse_alias_spec(spec)
        nodes = {n.name: n for n in self._repo.list_nodes(project)}
        for field, node in parsed.named_nodes():
            record = nodes.get(node)
            if record is None:
                raise InvalidSpec(
                    field,
                    f"no node {node!r} in project {project!r}{did_you_mean(node, nodes)}",
                )
            if record.deleting:
                raise InvalidSpec(field, f"node {node!r} is being deleted")
        return parsed

    def _event(self, alias: AliasRecord, kind: EventKind, actor: str, message: str) -> None:
        self._repo.add_event(alias.project, kind=kind, actor=actor, message=message)

    def _served(self, alias: AliasRecord) -> bool:
        """Every gateway worker serves the alias as it is stored now."""
        served = (
            None if self._routes is None else self._routes.served_alias(alias.project, alias.name)
        )
        if served is None:
            return False
        ready = {t.node for t in served.targets if t.ready}
        return served == alias_route(alias.project, alias.name, alias.spec, ready)

    def _nodes(self, project: str) -> dict[str, NodeView]:
        instances = self._repo.list_instances(project)
        return {
            n.name: node_view(n, [i for i in instances if i.node == n.name])
            for n in self._repo.list_nodes(project)
        }

    def _view(self, alias: AliasRecord, nodes: dict[str, NodeView] | None = None) -> AliasView:
        nodes = self._nodes(alias.project) if nodes is None else nodes
        why_not = {s.node: why_not_ready(nodes.get(s.node)) for s in alias.spec.nodes}
        taking = effective_shares(
            [(s.node, s.share) for s in alias.spec.nodes],
            {node: reason is None for node, reason in why_not.items()},
        )
        return AliasView(
            project=alias.project,
            name=alias.name,
            spec=alias.spec,
            nodes=[
                AliasNodeView(
                    node=s.node,
                    share=s.share,
                    effective_share=round(taking[s.node], 2),
                    ready=why_not[s.node] is None,
                    why_not_ready=why_not[s.node],
                    status=node.status if (node := nodes.get(s.node)) is not None else None,
                )
                for s in alias.spec.nodes
            ],
            routed=self._served(alias),
            rollout=rollout_view(r)
            if (r := self._repo.get_rollout(alias.project, alias.name))
            else None,
            mirror_figures=self._mirror_figures(alias),
            created_at=alias.created_at,
            updated_at=alias.updated_at,
        )

    def _mirror_figures(self, alias: AliasRecord) -> builtins.list[MirrorFiguresView]:
        if self._mirrors is None or not alias.spec.mirrors:
            return []
        seen = self._mirrors.mirror_figures(alias.project, alias.name)
        return [seen[m.node] for m in alias.spec.mirrors if m.node in seen]


def why_not_ready(node: NodeView | None) -> str | None:
    """Why a node takes no alias traffic, or None: it is Healthy at its minimum."""
    if node is None:
        return "not found"
    if node.status is NodeStatus.HEALTHY:
        return None
    if node.status is NodeStatus.DELETING:
        return "deleting"
    if node.status is NodeStatus.SUSPENDED:
        return "suspended"
    healthy, minimum = node.instances.healthy, node.spec.min_instances
    if healthy < minimum:
        return f"{healthy}/{minimum} Healthy, below its minimum"
    return str(node.status).lower()
