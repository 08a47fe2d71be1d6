"""How far the autoscaler may take a node before its project's quotas are full.

The tick decides nodes one after another; each node's ceiling is what the quotas leave
beside the other nodes' claims as they stand at that moment (pier.domain.quotas), so the
targets of one tick never add up past a quota. A node never goes below its minimum for a
quota: that was checked when it was created or updated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pier.domain.quotas import ProjectLimits, instances_within, node_claim, usage_of
from pier.domain.records import NodeRecord


def quota_ceiling(
    node: NodeRecord,
    nodes: Sequence[NodeRecord],
    limits: Mapping[str, ProjectLimits],
    target_of: Callable[[NodeRecord], int | None],
) -> tuple[int, str] | None:
    """The most instances ``node`` may have and the quota that says so; None: no quota
    limits it. ``target_of``: another node's current target (None: not decided yet)."""
    project_limits = limits.get(node.project)
    if project_limits is None:
        return None
    others = usage_of(
        node_claim(n.spec.configuration, min_instances=n.spec.min_instances, target=target_of(n))
        for n in nodes
        if n.project == node.project and n.key != node.key and not (n.deleting or n.suspended)
    )
    return instances_within(project_limits, others, node.spec.configuration)


def held_message(node: NodeRecord, *, target: int, wanted: int, quota: str) -> str:
    return (
        f"node {node.name} held at {target} instances though its load asks for {wanted}: "
        f"the quota {quota} of project {node.project} is full (`pier project limits get`)"
    )
