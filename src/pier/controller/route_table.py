"""Build the RouteTable gateways serve from: Healthy instances of every live node, and
every alias with, per node, whether it is ready (Healthy at its minimum, not suspended).

Nodes and aliases go into one table, published as one version: a gateway worker
switches an alias from one node to another in a single step, never serving half of a
change.
"""

from __future__ import annotations

from collections.abc import Iterable

from pier.controller.tracked import TrackedInstance
from pier.domain.aliases import alias_route
from pier.domain.instance_status import InstanceStatus
from pier.domain.records import AliasRecord, CallGrants, NodeRecord
from pier.domain.routes import AliasRoute, NodeRoute, RouteInstance, RouteTable, is_routable


def build_route_table(
    nodes: Iterable[NodeRecord],
    instances: Iterable[TrackedInstance],
    *,
    grants: CallGrants,
    max_body_bytes: int | None = None,
    aliases: Iterable[AliasRecord] = (),
) -> RouteTable:
    healthy: dict[str, list[RouteInstance]] = {}
    for inst in instances:
        routable = inst.endpoint is not None and is_routable(inst.instance_id, inst.endpoint)
        if inst.status is InstanceStatus.HEALTHY and routable and not inst.exited:
            healthy.setdefault(str(inst.key), []).append(
                RouteInstance(instance_id=inst.instance_id, endpoint=str(inst.endpoint))
            )
    routes = {}
    min_instances: dict[str, int] = {}
    for node in nodes:
        if node.deleting:
            continue
        key = str(node.key)
        if not node.suspended:  # a suspended node takes no alias traffic
            min_instances[key] = node.spec.min_instances
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
    ready = {key for key, least in min_instances.items() if len(routes[key].instances) >= least}
    return RouteTable(
        nodes=routes,
        aliases={f"{a.project}/{a.name}": _alias_route(a, ready) for a in aliases},
        token_sha256=grants.admins,
        project_tokens=grants.by_project,
    )


def _alias_route(alias: AliasRecord, ready: set[str]) -> AliasRoute:
    """``ready``: the "project/node" keys of the nodes Healthy at their minimum."""
    names = {n for n in alias.spec.node_names() if f"{alias.project}/{n}" in ready}
    return alias_route(alias.project, alias.name, alias.spec, names)
