"""Everything the controller keeps in memory about one node, in one object.

A NodeState is made when the controller first meets a node (in the store or among what a
runtime runs) and dropped as a whole when the node is removed, so nothing of a deleted
node (its lock, backoff, scaler, instances) lingers for a new node of the same name.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pier.controller.autoscale import NodeScaler
from pier.controller.backoff import CrashBackoff
from pier.controller.tracked import TrackedInstance
from pier.domain.instance_status import InstanceStatus
from pier.domain.names import InstanceId


@dataclass(slots=True)
class NodeState:
    backoff: CrashBackoff
    """Between instance starts of a crash-looping node, and between image pulls."""
    instances: dict[InstanceId, TrackedInstance] = field(default_factory=dict)
    """The node's instances, as the controller tracks them."""
    scaler: NodeScaler | None = None
    target: int | None = None
    """The instance count the last tick aimed at."""
    unavailable: str | None = None
    """Why the node's runtime is missing, while it is."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while the node is reconciled: one reconcile of a node at a time."""
    reconciling: asyncio.Task[None] | None = None
    """The node's reconcile, while it runs (it may outlive a tick: see Controller.tick)."""

    def count(self, *statuses: InstanceStatus, exclude: InstanceStatus | None = None) -> int:
        """Instances in one of ``statuses`` (any, when none given), but not ``exclude``."""
        return sum(
            1
            for t in self.instances.values()
            if (not statuses or t.status in statuses) and t.status is not exclude
        )
