"""What users see of nodes, instances, events and models, built from the store's records
as the typed views of pier.domain.views."""

from __future__ import annotations

from collections.abc import Sequence

from pier.domain.instance_status import InstanceStatus
from pier.domain.node_status import derive_node_status
from pier.domain.records import EventRecord, InstanceRecord, ModelRecord, NodeRecord
from pier.domain.views import EventView, InstanceCounts, InstanceView, ModelVersion, NodeView


def node_view(
    node: NodeRecord, instances: Sequence[InstanceRecord], *, routed: bool = False
) -> NodeView:
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
    target = node.spec.min_instances if node.target_instances is None else node.target_instances
    return NodeView(
        project=node.project,
        name=node.name,
        kind="model" if node.spec.model else "image",
        spec=node.spec.masked(),
        pinned_image=node.pinned_image,
        runtime=node.runtime,
        status=status,
        generation=node.generation,
        instances=InstanceCounts(healthy=healthy, total=len(instances), target=target),
        routed=routed,
        message=node.message,
        crash_looping=node.crash_looping,
        created_at=node.created_at,
        updated_at=node.updated_at,
    )


def instance_view(inst: InstanceRecord) -> InstanceView:
    return InstanceView(
        id=inst.id,
        node=inst.node,
        status=inst.status,
        since=inst.since,
        endpoint=inst.endpoint,
        restarts=inst.restarts,
        last_error=inst.last_error,
        generation=inst.generation,
        runtime=inst.runtime,
        pid=inst.pid,
        container_id=inst.container_id,
        limits_applied=list(inst.limits_applied),
        limits_not_applied=list(inst.limits_not_applied),
        created_at=inst.created_at,
    )


def event_view(event: EventRecord) -> EventView:
    return EventView(
        id=event.id,
        time=event.time,
        kind=event.kind,
        message=event.message,
        instance=event.instance,
        actor=event.actor,
    )


def model_view(model: ModelRecord) -> ModelVersion:
    return ModelVersion(
        name=model.name,
        version=model.version,
        format=model.format,
        sha256=model.sha256,
        size_bytes=model.size_bytes,
        created_at=model.created_at,
        metadata=model.metadata,
    )
