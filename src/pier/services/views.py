"""What users see of nodes, instances, events and models: JSON-ready dicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pier.domain.instance_status import InstanceStatus
from pier.domain.node_status import derive_node_status
from pier.domain.records import EventRecord, InstanceRecord, ModelRecord, NodeRecord


def node_view(
    node: NodeRecord, instances: Sequence[InstanceRecord], *, routed: bool = False
) -> dict[str, Any]:
    """``routed``: the gateway has the node's route, so requests to it are served (or wait
    for an instance) rather than answered 404."""
    healthy = sum(1 for i in instances if i.status is InstanceStatus.HEALTHY)
    status = derive_node_status(
        healthy=healthy,
        minimum=node.spec.min_instances,
        reached_minimum_once=node.reached_minimum,
        deleting=node.deleting,
        failing=node.crash_looping,
    )
    return {
        "project": node.project,
        "name": node.name,
        "kind": "model" if node.spec.model else "image",
        "spec": node.spec.redacted(),
        "pinned_image": node.pinned_image,
        "runtime": node.runtime,
        "status": status.value,
        "generation": node.generation,
        "instances": {
            "healthy": healthy,
            "total": len(instances),
            "target": node.spec.min_instances
            if node.target_instances is None
            else node.target_instances,
        },
        "routed": routed,
        "message": node.message,
        "crash_looping": node.crash_looping,
        "created_at": node.created_at.isoformat(),
        "updated_at": node.updated_at.isoformat(),
    }


def instance_view(inst: InstanceRecord) -> dict[str, Any]:
    return {
        "id": inst.id,
        "node": inst.node,
        "status": inst.status.value,
        "since": inst.since.isoformat(),
        "endpoint": inst.endpoint,
        "restarts": inst.restarts,
        "last_error": inst.last_error,
        "generation": inst.generation,
        "runtime": inst.runtime,
        "pid": inst.pid,
        "container_id": inst.container_id,
        "limits_applied": list(inst.limits_applied),
        "limits_not_applied": list(inst.limits_not_applied),
        "created_at": inst.created_at.isoformat(),
    }


def event_view(event: EventRecord) -> dict[str, Any]:
    return {
        "id": event.id,
        "time": event.time.isoformat(),
        "kind": event.kind,
        "message": event.message,
        "instance": event.instance,
        "actor": event.actor,
    }


def model_view(model: ModelRecord) -> dict[str, Any]:
    return {
        "name": model.name,
        "version": model.version,
        "format": model.format.value,
        "sha256": model.sha256,
        "size_bytes": model.size_bytes,
        "created_at": model.created_at.isoformat(),
        "metadata": model.metadata,
    }
