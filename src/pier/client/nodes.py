"""The Client's calls on nodes: create, read, change, suspend, delete, wait; instances,
events, logs, figures."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from pier.client.base import ClientBase, spec_fields, typed_answer
from pier.client.errors import NodeCrashLooping, NodeNotHealthy, WaitTimedOut
from pier.domain.errors import NotFound
from pier.domain.node_status import NodeStatus
from pier.domain.specs import NodeSpec
from pier.domain.views import (
    EventList,
    EventView,
    InstanceList,
    InstanceStats,
    InstanceView,
    NodeList,
    NodeView,
    SeriesMetric,
    SeriesView,
    StatsList,
)

FOLLOW_PAGE: Final = 100
"""Events read per poll while following a node or waiting for it."""


@dataclass(frozen=True, slots=True)
class NodeProgress:
    """One poll of ``Client.wait_node``: the node, its instances, events not seen before."""

    node: NodeView
    instances: list[InstanceView]
    new_events: list[EventView] = field(default_factory=list)


class NodeCalls(ClientBase):
    """Nodes and their instances, events, logs and figures."""

    def create_node(
        self, name: str, spec: NodeSpec | Mapping[str, Any] | None = None, **fields: Any
    ) -> NodeView:
        """Create a node from spec fields (model or image, port, min_instances, ...); the
        server fills in the defaults of what is not given."""
        body = {"name": name, "spec": {**spec_fields(spec), **fields}}
        response = self._request("POST", self._project_path("nodes"), json=body)
        return typed_answer(response, NodeView)

    def list_nodes(self) -> list[NodeView]:
        """The nodes of the project, by name (every page of them)."""
        nodes: list[NodeView] = []
        after: str | None = None
        while True:
            page = self.node_page(after=after)
            nodes += page.nodes
            if page.next_after is None:
                return nodes
            after = page.next_after

    def node_page(self, *, after: str | None = None, limit: int | None = None) -> NodeList:
        """One page of the project's nodes: those named after ``after`` (the previous
        page's ``next_after``), ``limit`` at most (default: the server's page size)."""
        params = {k: v for k, v in {"after": after, "limit": limit}.items() if v is not None}
        response = self._request("GET", self._project_path("nodes"), params=params)
        return typed_answer(response, NodeList)

    def get_node(self, name: str) -> NodeView:
        """A node: spec (secrets as '***'), status, instance counts, message."""
        return typed_answer(self._request("GET", self._project_path("nodes", name)), NodeView)

    def update_node(
        self, name: str, spec: Mapping[str, Any] | None = None, **fields: Any
    ) -> NodeView:
        """Change some spec fields; pier replaces instances as needed. The server merges
        the change into the spec as a JSON Merge Patch (RFC 7396): a field given replaces
        its value, None removes it (back to its default), maps (``env``, ``secret_env``)
        and groups (``health``, ``telemetry``) merge key by key, so
        ``update_node("web", env={"B": "2"})`` keeps every other variable and
        ``env={"A": None}`` removes A."""
        body = {"spec": {**(spec or {}), **fields}}
        response = self._request("PATCH", self._project_path("nodes", name), json=body)
        return typed_answer(response, NodeView)

    def delete_node(self, name: str) -> NodeView:
        """Start deleting a node; it disappears once its instances are gone."""
        return typed_answer(self._request("DELETE", self._project_path("nodes", name)), NodeView)

    def suspend_node(self, name: str) -> NodeView:
        """Suspend a node: its instances are drained and stopped, the spec kept; the
        gateway answers 503 for it until ``resume_node``. Suspending twice is harmless."""
        path = self._project_path("nodes", name, "suspend")
        return typed_answer(self._request("POST", path), NodeView)

    def resume_node(self, name: str) -> NodeView:
        """Resume a suspended node: it comes back to its minimum (``wait_node`` waits for
        it). Resuming a running node is harmless."""
        path = self._project_path("nodes", name, "resume")
        return typed_answer(self._request("POST", path), NodeView)

    def wait_node_stopped(
        self, name: str, *, timeout_s: float = 120.0, poll_s: float = 0.5
    ) -> NodeView:
        """Poll until a suspended node has no instance left."""
        deadline = time.monotonic() + timeout_s
        while True:
            node = self.get_node(name)
            if node.instances.total == 0:
                return node
            if time.monotonic() >= deadline:
                raise WaitTimedOut(name, "stop its instances", timeout_s, node)
            time.sleep(poll_s)

    def instances(self, name: str) -> list[InstanceView]:
        """The instances of a node with their statuses."""
        path = self._project_path("nodes", name, "instances")
        return typed_answer(self._request("GET", path), InstanceList).instances

    def events(self, name: str, *, limit: int = 100, after: int | None = None) -> list[EventView]:
        """The latest events of a node, oldest first; with ``after`` (an event id), the
        first ``limit`` events after that one."""
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        path = self._project_path("nodes", name, "events")
        events = typed_answer(self._request("GET", path, params=params), EventList).events
        # A control plane older than `after` sends the newest events whatever it is asked.
        return events if after is None else [e for e in events if e.id > after]

    def last_event_id(self, name: str) -> int:
        """The id of the node's newest event (0 if none): ``after`` for what comes next."""
        events = self.events(name, limit=1)
        return events[-1].id if events else 0

    def follow_events(
        self, name: str, *, limit: int = 100, after: int | None = None, poll_s: float = 1.0
    ) -> Iterator[EventView]:
        """The node's latest ``limit`` events (or those after ``after``), then each new one
        as it happens; ends when the node is gone."""
        cursor = after
        while True:
            try:
                events = self.events(name, limit=max(limit, FOLLOW_PAGE), after=cursor)
            except NotFound:
                if cursor is None:
                    raise
                return  # deleted while followed
            if cursor is None:
                events = events[-limit:]
            yield from events
            cursor = events[-1].id if events else (cursor or 0)
            time.sleep(poll_s)

    def stats(self, name: str) -> list[InstanceStats]:
        """CPU percent and memory bytes of each instance of a node, measured now."""
        response = self._request("GET", self._project_path("nodes", name, "stats"))
        return typed_answer(response, StatsList).instances

    def series(
        self, name: str, metric: SeriesMetric | str, *, since: float = 300.0, step: int = 5
    ) -> SeriesView:
        """pier's own samples of a node's ``metric`` over the last ``since`` seconds, in
        points of ``step`` seconds or more (see ``SeriesMetric``)."""
        params = {"metric": str(metric), "since": since, "step": step}
        response = self._request("GET", self._project_path("nodes", name, "series"), params=params)
        return typed_answer(response, SeriesView)

    def metrics(self, name: str) -> str:
        """Prometheus text of the node's Healthy instances, labelled node and instance."""
        return self._request("GET", self._project_path("nodes", name, "metrics")).text

    def logs(
        self, name: str, instance: str | None = None, follow: bool = False, tail: int | None = None
    ) -> Iterator[str]:
        """Log lines of a node's instances (each prefixed ``[instance-id]``) or of one."""
        params: dict[str, Any] = {"follow": str(follow).lower()}
        if instance is not None:
            params["instance"] = instance
        if tail is not None:
            params["tail"] = tail
        timeout = httpx.Timeout(self.timeout_s, read=None) if follow else self.timeout_s
        path = self._project_path("nodes", name, "logs")
        with self._stream("GET", path, params=params, timeout=timeout) as response:
            yield from response.iter_lines()

    def wait_node(
        self,
        name: str,
        *,
        timeout_s: float = 300.0,
        poll_s: float = 0.5,
        generation: int | None = None,
        on_progress: Callable[[NodeProgress], None] | None = None,
        after: int | None = None,
    ) -> NodeView:
        """Poll until the node is Healthy and the gateway routes it (a request sent next is
        served); NodeCrashLooping or WaitTimedOut if it is not. With ``generation`` (what
        ``update_node`` returned), also until no instance of an older spec is left: the
        rolling update is done. ``on_progress`` gets the events after ``after`` (an event
        id, see ``last_event_id``), or all the latest ones first."""
        deadline = time.monotonic() + timeout_s
        cursor = after
        while True:
            node = self.get_node(name)
            instances = self.instances(name) if on_progress or generation else []
            if on_progress is not None:
                events = self.events(name, limit=FOLLOW_PAGE, after=cursor)
                cursor = events[-1].id if events else (cursor or 0)
                on_progress(NodeProgress(node, instances, events))
            healthy = node.status is NodeStatus.HEALTHY
            older = generation and any(i.generation < generation for i in instances)
            if healthy and node.routed and not older:
                return node
            if node.crash_looping:
                raise NodeCrashLooping(name, node)
            if node.status is NodeStatus.DELETING:
                raise NodeNotHealthy(name, "is being deleted", node)
            if node.status is NodeStatus.SUSPENDED:
                raise NodeNotHealthy(name, f"is suspended (pier node resume {name})", node)
            if time.monotonic() >= deadline:
                goal = "become Healthy"
                if healthy:
                    goal = "replace its older instances" if older else "get routed by the gateway"
                raise WaitTimedOut(name, goal, timeout_s, node)
            time.sleep(poll_s)

    def wait_node_deleted(
        self, name: str, *, timeout_s: float = 120.0, poll_s: float = 0.5
    ) -> None:
        """Poll until the node is gone (its instances are deleted)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                node = self.get_node(name)
            except NotFound:
                return
            if time.monotonic() >= deadline:
                raise WaitTimedOut(name, "disappear", timeout_s, node)
            time.sleep(poll_s)
