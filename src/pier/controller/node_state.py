"""Everything the controller keeps in memory about one node, in one object.

A NodeState is made when the controller first meets a node (in the store or among what a
runtime runs) and dropped as a whole when the node is removed, so nothing of a deleted
node (its lock, backoff, scaler, instances) lingers for a new node of the same name.
A permanent failure (domain/retry.py) blocks the node's spec until its generation moves.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from pier.controller.autoscale import NodeScaler
from pier.controller.backoff import CrashBackoff
from pier.controller.tracked import TrackedInstance
from pier.domain.instance_status import InstanceStatus
from pier.domain.names import InstanceId


@dataclass(frozen=True, slots=True)
class Blocked:
    """A permanent failure of one generation of the node's spec."""

    generation: int
    message: str


@dataclass(slots=True)
class NodeState:
    backoff: CrashBackoff
    """Between instance starts of a crash-looping node, and between image pulls."""
    instances: dict[InstanceId, TrackedInstance] = field(default_factory=dict)
    """The node's instances, as the controller tracks them."""
    scaler: NodeScaler | None = None
    target: int | None = None
    """The instance count the last tick aimed at."""
    held_by_quota: str | None = None
    """The quota that holds the node's autoscaling back, while one does (told once)."""
    unavailable: str | None = None
    """Why the node's runtime is missing, while it is."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while the node is reconciled: one reconcile of a node at a time."""
    reconciling: asyncio.Task[None] | None = None
    """The node's reconcile, while it runs (it may outlive a tick: see Controller.tick)."""
    blocked: Blocked | None = None
    """Set by a PermanentError: the node's spec cannot run as it is."""
    quiet: Any = None
    """What the node's last reconcile saw (Controller._inputs) when it had nothing to do
    and every instance was Healthy; None otherwise. While the inputs stay the same, the
    node is left alone until its resync."""
    quiet_at: float = 0.0
    """When ``quiet`` was set (monotonic)."""

    def take_failure(self) -> BaseException | None:
        """What the node's reconcile raised, once it is over; told once (then forgotten)."""
        task = self.reconciling
        if task is None or not task.done():
            return None
        self.reconciling = None
        return None if task.cancelled() else task.exception()

    def block(self, generation: int, message: str) -> None:
        """Start no instance and pull no image of ``generation`` again: ``message`` says
        why (no secret in it)."""
        self.blocked = Blocked(generation, message)

    def blocked_message(self, generation: int) -> str | None:
        """Why the node cannot run, while its spec is the one that failed; a new
        generation of the spec lifts the block."""
        if self.blocked is not None and self.blocked.generation != generation:
            self.blocked = None
        return self.blocked.message if self.blocked is not None else None

    def count(self, *statuses: InstanceStatus, exclude: InstanceStatus | None = None) -> int:
        """Instances in one of ``statuses`` (any, when none given), but not ``exclude``."""
        return sum(
            1
            for t in self.instances.values()
            if (not statuses or t.status in statuses) and t.status is not exclude
        )
