from __future__ import annotations

from fastapi import APIRouter

from pier.api.deps import ServicesDep
from pier.api.errors import error_responses
from pier.domain.quotas import ProjectLimits, ProjectLimitsView

router = APIRouter(
    prefix="/api/v1/projects/{project}/limits",
    tags=["projects"],
    responses=error_responses(401, 404, 422, 503),
)


@router.get("")
def get_project_limits(project: str, services: ServicesDep) -> ProjectLimitsView:
    """The project's allowed configurations and quotas, and what its nodes use of them."""
    return services.quotas.get(project)


@router.put("", responses=error_responses(400))
def set_project_limits(
    project: str, body: ProjectLimits, services: ServicesDep
) -> ProjectLimitsView:
    """Replace the project's allowed configurations and quotas (null: no limit)."""
    return services.quotas.set(project, body)
