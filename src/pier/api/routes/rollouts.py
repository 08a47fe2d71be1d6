from __future__ import annotations

from fastapi import APIRouter

from pier.api.deps import ActorDep, ServicesDep
from pier.api.errors import error_responses
from pier.domain.rollouts import RolloutPlan
from pier.domain.views import RolloutView

router = APIRouter(
    prefix="/api/v1/projects/{project}/aliases/{name}/rollout",
    tags=["aliases"],
    responses=error_responses(401, 403, 404, 422, 503),
)


@router.post("", status_code=201, responses=error_responses(400, 409))
def start_rollout(
    project: str, name: str, body: RolloutPlan, services: ServicesDep, actor: ActorDep
) -> RolloutView:
    """Move the alias's traffic to ``to_node`` step by step, holding each step for
    ``bake_s`` and rolling back by itself when the new node's error rate or p95 latency
    (measured by the gateway on the alias's traffic) is over its limit."""
    return services.rollouts.start(project, name, body, actor=actor)


@router.get("")
def get_rollout(project: str, name: str, services: ServicesDep) -> RolloutView:
    """The alias's latest rollout: step, figures, decision and why."""
    return services.rollouts.get(project, name)


@router.post("/abort")
def abort_rollout(project: str, name: str, services: ServicesDep, actor: ActorDep) -> RolloutView:
    """Roll the running rollout back now (the alias gets its shares of before it); a
    finished rollout is answered as it is."""
    return services.rollouts.abort(project, name, actor=actor)
