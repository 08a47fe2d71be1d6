"""Node use cases: create, read, update, delete. The controller does the rest."""

from __future__ import annotations

import builtins
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from pier.domain.errors import InvalidSpec, NodeDeleting, NodeInUse, NotFound
from pier.domain.event_kinds import EventKind
from pier.domain.merge_patch import merge_patch
from pier.domain.names import validate_name
from pier.domain.placement import CONTAINER_RUNTIME, PROCESS_RUNTIME, runtime_for
from pier.domain.records import InstanceRecord, NodeRecord
from pier.domain.specs import Engine, ModelFormat, NodeSpec, parse_node_spec
from pier.domain.views import EventView, InstanceView, NodeList, NodeView
from pier.services.quotas import QuotaService
from pier.services.routes import RouteSource
from pier.services.views import event_view, instance_view, node_view
from pier.store.repository import Repository


class NodeService:
    def __init__(
        self,
        repo: Repository,
        *,
        routes: RouteSource | None = None,
        image_nodes_refusal: Callable[[], str | None] = lambda: None,
        triton_refusal: Callable[[], str | None] = lambda: None,
        container_runtime: str = CONTAINER_RUNTIME,
        page_size: int = 100,
        max_page_size: int = 1000,
    ) -> None:
        """``page_size``: the nodes in a page that gives no limit; ``max_page_size``: the
        largest limit a page may ask for."""
        self._repo = repo
        self._page_size = page_size
        self._max_page_size = max_page_size
        self._container_runtime = container_runtime
        """Where image nodes that name no runtime run (docker; swarm under --runtime swarm)."""
        self._routes = routes
        """Says whether the gateway routes a node; None: nothing routes (no gateway)."""
        self._image_nodes_refusal = image_nodes_refusal
        """Why image nodes cannot be created now (no container engine answers), or None."""
        self._triton_refusal = triton_refusal
        """Why engine triton cannot run here (no tritonserver installed), or None."""
        self._quotas = QuotaService(repo)

    def create(
        self, project: str, name: str, spec: NodeSpec | dict[str, Any], *, actor: str
    ) -> NodeView:
        """Validate and store a new node; its instances follow from the controller."""
        self._repo.require_project(project)
        validate_name(name, field="name")
        parsed = self._validated(project, spec)
        with self._repo.unit_of_work():  # the quota check sees the nodes it is stored beside
            self._quotas.check_node(project, name, parsed)
            node = self._repo.add_node(project, name, parsed, runtime=self._runtime_for(parsed))
            self._repo.add_event(
                project,
                node=name,
                kind=EventKind.NODE_CREATED,
                actor=actor,
                message=f"node {name} created by {actor}",
            )
        return self._view(node, [])

    def _runtime_for(self, spec: NodeSpec) -> str:
        return runtime_for(spec, container_runtime=self._container_runtime)

    def _validated(self, project: str, spec: NodeSpec | dict[str, Any]) -> NodeSpec:
        parsed = spec if isinstance(spec, NodeSpec) else parse_node_spec(spec)
        if parsed.model is not None:
            model = self._repo.get_model(project, parsed.model, parsed.model_version)
            parsed = parsed.model_copy(update={"model_version": model.version})
            if model.format is ModelFormat.TRITON and parsed.engine is not Engine.TRITON:
                raise InvalidSpec(
                    "engine",
                    f"model {model.name!r} is a Triton model directory: tritonserver serves "
                    "it (engine triton, --engine triton)",
                )
        if (
            parsed.engine is Engine.TRITON
            and parsed.image is None  # in an image, the image's tritonserver runs
            and (refusal := self._triton_refusal()) is not None
        ):
            raise InvalidSpec("engine", refusal)
        refusal = self._image_nodes_refusal() if parsed.image is not None else None
        if refusal is not None:
            raise InvalidSpec("image", refusal)
        if parsed.registry_secret is not None:
            try:
                self._repo.get_secret(project, parsed.registry_secret)
            except NotFound:
                raise InvalidSpec(
                    "registry_secret",
                    f"no secret {parsed.registry_secret!r} in project {project!r}; create it first",
                ) from None
        return parsed

    def list(self, project: str) -> list[NodeView]:
        """Every node of the project (the UI's lists; the API pages them: page())."""
        self._repo.require_project(project)
        return self._views(project, self._repo.list_nodes(project), names=None)

    def page(self, project: str, *, after: str | None = None, limit: int | None = None) -> NodeList:
        """The project's nodes named after ``after`` (a previous page's ``next_after``),
        ``limit`` of them at most (default: the page size setting)."""
        if limit is None:
            limit = self._page_size
        if not 1 <= limit <= self._max_page_size:
            raise InvalidSpec(
                "limit", f"a page holds 1 to {self._max_page_size} nodes, not {limit} "
                "(PIER_API__MAX_NODE_PAGE_SIZE)",
            )  # fmt: skip
        self._repo.require_project(project)
        nodes = self._repo.list_nodes(project, after=after, limit=limit + 1)
        more, nodes = len(nodes) > limit, nodes[:limit]
        views = self._views(project, nodes, names=[n.name for n in nodes])
        return NodeList(nodes=views, next_after=nodes[-1].name if more else None)

    def _views(
        self, project: str, nodes: builtins.list[NodeRecord], *, names: builtins.list[str] | None
    ) -> builtins.list[NodeView]:
        """``names``: the nodes whose instances to read (None: every node's)."""
        by_node: dict[str, builtins.list[InstanceRecord]] = defaultdict(list)
        for instance in self._repo.list_instances(project, nodes=names):
            by_node[instance.node].append(instance)
        return [self._view(n, by_node[n.name]) for n in nodes]

    def get(self, project: str, name: str) -> NodeView:
        node = self._repo.get_node(project, name)
        return self._view(node, self._repo.list_instances(project, name))

    def update(self, project: str, name: str, changes: dict[str, Any], *, actor: str) -> NodeView:
        """Apply ``changes``, a JSON Merge Patch of the spec (pier.domain.merge_patch), to
        the stored spec; instances are replaced in a rolling update."""
        node = self._repo.get_node(project, name)
        parsed = self._validated(project, merge_patch(node.spec.model_dump(mode="json"), changes))
        if parsed.runtime is not None and parsed.runtime != node.runtime:
            raise InvalidSpec(
                "runtime",
                f"node {name} runs on the {node.runtime} runtime and stays there; create a new "
                f"node for the {parsed.runtime} runtime",
            )
        if (parsed.image is None) != (node.runtime == PROCESS_RUNTIME):
            raise InvalidSpec(
                "image",
                f"node {name} runs on the {node.runtime} runtime and stays there: "
                f"{'adding' if parsed.image else 'removing'} its image would move it to the "
                f"{self._runtime_for(parsed)} runtime; create a new node instead",
            )
        if parsed == node.spec:
            return self._view(node, self._repo.list_instances(project, name))
        fields = ", ".join(sorted(changes)) or "nothing"
        with self._repo.unit_of_work():  # the spec and its event, or neither
            if (parsed.configuration, parsed.min_instances) != (
                node.spec.configuration, node.spec.min_instances,
            ):  # fmt: skip
                self._quotas.check_node(project, name, parsed)
            updated = self._repo.update_node_spec(
                project, name, parsed, repin=parsed.image != node.spec.image
            )
            how = (
                f"instances are replaced one by one (generation {updated.generation})"
                if updated.generation != node.generation
                else "applied to the running instances"
            )
            self._repo.add_event(
                project,
                node=name,
                kind=EventKind.NODE_UPDATED,
                actor=actor,
                message=f"node {name} updated by {actor}: {fields}; {how}",
            )
        return self._view(updated, self._repo.list_instances(project, name))

    def delete(self, project: str, name: str, *, actor: str) -> NodeView:
        """Mark the node Deleting; the controller stops its instances and forgets it.
        Refused (NodeInUse) while an alias names the node."""
        with self._repo.unit_of_work():
            self._repo.get_node(project, name)
            if aliases := self._repo.aliases_using(project, name):
                raise NodeInUse(project, name, aliases)
            node = self._repo.mark_node_deleting(project, name)
            self._repo.add_event(
                project,
                node=name,
                kind=EventKind.NODE_DELETING,
                actor=actor,
                message=f"node {name} deleted by {actor}",
            )
        return self._view(node, self._repo.list_instances(project, name))

    def suspend(self, project: str, name: str, *, actor: str) -> NodeView:
        """Suspend the node: the controller drains and stops its instances and starts none
        (not for load, not for a request) until it is resumed; the spec is kept. Suspending
        a suspended node changes nothing."""
        return self._set_suspended(project, name, suspended=True, actor=actor)

    def resume(self, project: str, name: str, *, actor: str) -> NodeView:
        """Resume a suspended node: the controller brings it back to its minimum.
        Resuming a node that is not suspended changes nothing."""
        return self._set_suspended(project, name, suspended=False, actor=actor)

    def _set_suspended(self, project: str, name: str, *, suspended: bool, actor: str) -> NodeView:
        node = self._repo.get_node(project, name)
        if node.deleting:
            raise NodeDeleting(project, name, "suspended" if suspended else "resumed")
        if node.suspended == suspended:
            return self._view(node, self._repo.list_instances(project, name))
        with self._repo.unit_of_work():
            if not suspended:  # back to its minimum: that must fit the quotas again
                self._quotas.check_node(project, name, node.spec)
            updated = self._repo.set_node_suspended(project, name, suspended=suspended)
            what = (
                "its instances are drained and stopped, its spec kept"
                if suspended
                else f"back to its minimum of {node.spec.min_instances} instance(s)"
            )
            self._repo.add_event(
                project,
                node=name,
                kind=EventKind.NODE_SUSPENDED if suspended else EventKind.NODE_RESUMED,
                actor=actor,
                message=f"node {name} {'suspended' if suspended else 'resumed'} by {actor}: {what}",
            )
        return self._view(updated, self._repo.list_instances(project, name))

    def _view(self, node: NodeRecord, instances: builtins.list[InstanceRecord]) -> NodeView:
        routed = self._routes is not None and self._routes.routed(node.project, node.name)
        return node_view(node, instances, routed=routed)

    def instances(self, project: str, name: str) -> builtins.list[InstanceView]:
        self._repo.get_node(project, name)
        return [instance_view(i) for i in self._repo.list_instances(project, name)]

    def events(
        self, project: str, name: str, *, limit: int, after: int | None = None
    ) -> builtins.list[EventView]:
        """The node's newest events, or with ``after`` (an event id) the ones after it."""
        self._repo.get_node(project, name)
        events = self._repo.list_events(project, name, limit=limit, after=after)
        return [event_view(e) for e in events]
