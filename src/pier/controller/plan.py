"""The reconcile plan: what to create and delete for one node. Pure: ``now`` is passed in.

Rules, in order:
1. Exited instances are deleted (and so replaced): a crash is not a failed deployment.
2. Instances Unhealthy for longer than the health check's grace, or not Healthy within
   ``start_timeout_s`` of their creation, are deleted.
3. Instances of an older generation are replaced no more than ``maintenance_limit`` at a
   time: new ones are created first, an old one goes once enough are Healthy.
4. Then the count is brought to the target: surplus goes (not Healthy first, then the
   newest), a shortfall is created unless a crash backoff is running.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pier.domain.instance_status import InstanceStatus
from pier.domain.specs import NodeSpec

S = InstanceStatus


@dataclass(frozen=True, slots=True)
class PlannedInstance:
    """What the plan needs to know of one instance."""

    instance_id: str
    status: InstanceStatus
    since: float
    created_at: float
    generation: int
    exited: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    create: int = 0
    delete: tuple[str, ...] = ()
    reasons: tuple[str, ...] = field(default=())
    """One line per decision, for the node's events."""
    failed: tuple[str, ...] = ()
    """Instances deleted because they failed (crashed, never ready, unhealthy too long)."""


def plan_node(
    spec: NodeSpec,
    target: int,
    instances: Sequence[PlannedInstance],
    *,
    generation: int,
    now: float,
    backoff_until: float = 0.0,
    deleting: bool = False,
) -> Plan:
    """Decide one step towards ``target`` instances of ``generation``."""
    if deleting:
        doomed = tuple(i.instance_id for i in instances if i.status is not S.DELETING)
        return Plan(delete=doomed, reasons=("node is being deleted",) if doomed else ())
    delete: list[str] = []
    failed: list[str] = []
    reasons: list[str] = []
    for inst in instances:
        reason = _failure(spec, inst, now)
        if reason:
            delete.append(inst.instance_id)
            failed.append(inst.instance_id)
            reasons.append(f"instance {inst.instance_id} {reason}: replacing it")
    live = [i for i in instances if i.instance_id not in delete and i.status is not S.DELETING]
    current = [i for i in live if i.generation == generation]
    old = [i for i in live if i.generation != generation]
    create = max(0, target - len(current))
    if old:
        surge = max(0, target + spec.maintenance_limit - len(live))
        create = min(create, surge)
        healthy = sum(1 for i in live if i.status is S.HEALTHY)
        may_go = healthy - max(0, target - spec.maintenance_limit)
        old_sorted = sorted(old, key=lambda i: (i.status is S.HEALTHY, -i.created_at))
        for inst in old_sorted:
            if inst.status is S.HEALTHY and may_go <= 0:
                break
            if inst.status is S.HEALTHY:
                may_go -= 1
            delete.append(inst.instance_id)
            reasons.append(f"instance {inst.instance_id} is of an older spec: replacing it")
    elif len(current) > target:
        surplus = sorted(current, key=lambda i: (i.status is S.HEALTHY, -i.created_at))
        for inst in surplus[: len(current) - target]:
            delete.append(inst.instance_id)
        reasons.append(f"scaling down from {len(current)} to {target} instances")
    if create and failed:
        reasons.append("starting replacements on the next step, after the crash backoff")
        create = 0
    elif create and backoff_until > now:
        reasons.append(
            f"waiting {backoff_until - now:.1f} s before starting an instance (crash backoff)"
        )
        create = 0
    elif create:
        reasons.append(f"starting {create} instance(s) to reach {target}")
    return Plan(create=create, delete=tuple(delete), reasons=tuple(reasons), failed=tuple(failed))


def _failure(spec: NodeSpec, inst: PlannedInstance, now: float) -> str | None:
    if inst.status is S.DELETING:
        return None
    if inst.exited:
        return "exited"
    if inst.status is S.UNHEALTHY and now - inst.since > spec.health.grace_s:
        return f"was Unhealthy for more than {spec.health.grace_s:g} s"
    never_ready = inst.status in (S.CREATED, S.STARTED, S.PREPARING, S.UNDEFINED)
    if never_ready and now - inst.created_at > spec.health.start_timeout_s:
        return f"did not become Healthy within {spec.health.start_timeout_s:g} s"
    return None
