"""What users see of nodes, instances, events and models, built from the store's records
as the typed views of pier.domain.views."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pier.domain.aliases import AliasShare
from pier.domain.instance_status import InstanceStatus
from pier.domain.node_status import derive_node_status
from pier.domain.records import (
    EventRecord,
    InstanceRecord,
    ModelRecord,
    NodeRecord,
    RolloutRecord,
)
from pier.domain.views import (
    EventView,
    InstanceCounts,
    InstanceView,
    ModelVersion,
    NodeView,
    RolloutView,
)


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
        suspended=node.suspended,
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
    return InstanceView.model_validate(inst, from_attributes=True)


def event_view(event: EventRecord) -> EventView:
    return EventView.model_validate(event, from_attributes=True)


def model_view(model: ModelRecord) -> ModelVersion:
    return ModelVersion.model_validate(model, from_attributes=True)


def rollout_view(record: RolloutRecord) -> RolloutView:
    state = record.state

    def shares(pairs: Sequence[tuple[str, int]]) -> list[AliasShare]:
        return [AliasShare(node=node, share=share) for node, share in pairs]

    bake_until = None
    if state.baseline is not None:
        bake_until = datetime.fromtimestamp(state.bake_until, UTC)
    return RolloutView(
        alias=record.alias, plan=state.plan, phase=state.phase, action=state.action,
        why=state.why, step=state.step + 1, percent=state.percent, bake_until=bake_until,
        figures=state.figures, passed=list(state.passed), previous=shares(state.previous),
        shares=shares(state.shares()), updated_at=record.updated_at,
    )  # fmt: skip
