"""Plain records of what pier keeps: models, nodes, aliases, instances, events.

The store returns these; services and the API shape them for users.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pier.domain.aliases import AliasSpec
from pier.domain.instance_status import InstanceStatus
from pier.domain.names import NodeKey, NodeName, ProjectName
from pier.domain.rollouts import RolloutState
from pier.domain.specs import ModelFormat, NodeSpec


@dataclass(frozen=True, slots=True)
class ModelRecord:
    project: str
    name: str
    version: int
    format: ModelFormat
    sha256: str
    size_bytes: int
    created_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NodeRecord:
    project: str
    name: str
    spec: NodeSpec
    generation: int
    deleting: bool
    reached_minimum: bool
    message: str | None
    crash_looping: bool
    created_at: datetime
    updated_at: datetime
    pinned_image: str | None = None
    target_instances: int | None = None
    """How many instances the autoscaler wants now (None until it first decided)."""
    runtime: str = "local"
    """The runtime the node is bound to (see domain.placement)."""
    suspended: bool = False
    """Suspended on request: no instance runs (none is started) until it is resumed."""
    key: NodeKey = field(init=False, repr=False, compare=False)
    """Made once: the tick looks nodes up by it many times."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", NodeKey(ProjectName(self.project), NodeName(self.name)))


@dataclass(frozen=True, slots=True)
class NodeChanges:
    """The nodes changed after a change number (Repository.node_changes)."""

    seq: int
    """The store's change number as read: ask for what changed after it next time."""
    nodes: tuple[NodeRecord, ...] = ()
    """The changed nodes, by project and name."""
    whole: bool = False
    """``nodes`` is every node (a first read, or one since which a node was removed)."""


@dataclass(frozen=True, slots=True)
class AliasRecord:
    project: str
    name: str
    spec: AliasSpec
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RolloutRecord:
    """An alias's latest guarded rollout."""

    project: str
    alias: str
    state: RolloutState
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    id: str
    project: str
    node: str
    status: InstanceStatus
    since: datetime
    endpoint: str | None
    restarts: int
    last_error: str | None
    generation: int
    runtime: str
    limits_applied: tuple[str, ...]
    limits_not_applied: tuple[str, ...]
    created_at: datetime
    port_endpoints: Mapping[int, str] = field(default_factory=dict)
    """Base URLs of a separate health or metrics port, by container port."""
    pid: int | None = None
    """The instance's process, on a process runtime."""
    container_id: str | None = None
    """The instance's container, on a container runtime."""


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    time: datetime
    project: str
    node: str | None
    instance: str | None
    kind: str
    message: str
    actor: str | None


def endpoint_for_port(
    endpoint: str | None, port_endpoints: Mapping[int, str], port: int | None, node_port: int | None
) -> str | None:
    """An instance's base URL for ``port`` (a health or metrics port): its own endpoint,
    unless ``port`` is a separate container port, reached through its own host port."""
    if port is not None and port != node_port:
        return port_endpoints.get(port)
    return endpoint


@dataclass(frozen=True, slots=True)
class CallGrants:
    """Which tokens may call private nodes and aliases, for the gateway's route table."""

    admins: frozenset[str]
    """SHA-256 digests of the installation admins' tokens: every project."""
    by_project: dict[str, dict[str, float | None]]
    """Project -> digest -> when the token expires (Unix time; None: never)."""
