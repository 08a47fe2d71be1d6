"""Node status, derived from its instances: never stored as a fact of its own."""

from __future__ import annotations

from enum import StrEnum


class NodeStatus(StrEnum):
    CREATED = "Created"
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    DELETING = "Deleting"
    SUSPENDED = "Suspended"
    """Its instances were stopped on request (``pier node suspend``); the spec is kept."""


def derive_node_status(
    *,
    healthy: int,
    minimum: int,
    reached_minimum_once: bool,
    deleting: bool,
    failing: bool = False,
    suspended: bool = False,
) -> NodeStatus:
    """Created until the node first reaches its minimum; then Healthy or Unhealthy.

    ``failing`` (its instances keep crashing, or its image cannot be pulled) makes a node
    below its minimum Unhealthy even before it ever reached it: it started and failed.
    A node with a minimum of 0 is Healthy as soon as it exists: nothing is missing.
    A suspended node is Suspended from the request on (while its instances drain too),
    until it is resumed; deleting one makes it Deleting.
    """
    if deleting:
        return NodeStatus.DELETING
    if suspended:
        return NodeStatus.SUSPENDED
    if healthy >= minimum:
        return NodeStatus.HEALTHY
    if reached_minimum_once or failing:
        return NodeStatus.UNHEALTHY
    return NodeStatus.CREATED
