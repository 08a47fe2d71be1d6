"""Node status, derived from its instances: never stored as a fact of its own."""

from __future__ import annotations

from enum import StrEnum


class NodeStatus(StrEnum):
    CREATED = "Created"
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    DELETING = "Deleting"


def derive_node_status(
    *, healthy: int, minimum: int, reached_minimum_once: bool, deleting: bool
) -> NodeStatus:
    """Created until the node first reaches its minimum; then Healthy or Unhealthy.

    A node with a minimum of 0 is Healthy as soon as it exists: nothing is missing.
    """
    if deleting:
        return NodeStatus.DELETING
    if healthy >= minimum:
        return NodeStatus.HEALTHY
    if reached_minimum_once:
        return NodeStatus.UNHEALTHY
    return NodeStatus.CREATED
