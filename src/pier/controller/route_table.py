"""Build the RouteTable gateways serve from: Healthy instances of every live node."""

from __future__ import annotations

from collections.abc import Iterable

from pier.controller.tracked import TrackedInstance
from pier.domain.instance_status import InstanceStatus
from pier.domain.records import NodeRecord
from pier.domain.routes import NodeRoute, RouteInstance, RouteTable, is_routable


def build_route_table(
    nodes: Iterable[NodeRecord],
    instances: Iterable[TrackedInstance],
    *,
    token_sha256: frozenset[str],
    max_body_bytes: int | None = None,
) -> RouteTable:
    healthy: dict[str, list[RouteInstance]] = {}
    for inst in instances:
        routable = inst.endpoint is not None and is_routable(inst.instance_id, inst.endpoint)
        if inst.status is InstanceStatus.HEALTHY and routable and not inst.exited:
            healthy.setdefault(str(inst.key), []).append(
                RouteInstance(instance_id=inst.instance_id, endpoint=str(inst.endpoint))
            )
    routes = {}
    for node in nodes:
        if node.deleting:
            continue
        key = str(node.key)
        routes[key] = NodeRoute(
            project=node.project,
            node=node.name,
            instances=tuple(sorted(healthy.get(key, []), key=lambda i: i.instance_id)),
            timeout_s=node.spec.timeout_s,
            idle_timeout_s=node.spec.idle_timeout_s,
            access=node.spec.access,
            max_body_bytes=(
                max_body_bytes if node.spec.max_body_bytes is None else node.spec.max_body_bytes
            ),
            scales_from_zero=node.spec.min_instances == 0 and not node.suspended,
            suspended=node.suspended,
        )
    return RouteTable(nodes=routes, token_sha256=token_sha256)
