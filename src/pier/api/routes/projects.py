from __future__ import annotations

from fastapi import APIRouter

from pier.api.deps import PrincipalDep, ServicesDep
from pier.api.errors import error_responses
from pier.domain.requests import ProjectCreate
from pier.domain.views import ProjectList, ProjectView

router = APIRouter(
    prefix="/api/v1/projects",
    tags=["projects"],
    responses=error_responses(401, 403, 422, 503),
)


@router.post("", status_code=201, responses=error_responses(400, 409))
def create_project(body: ProjectCreate, services: ServicesDep) -> ProjectView:
    """Create a project (installation admin)."""
    return services.projects.create(body.name)


@router.get("")
def list_projects(services: ServicesDep, principal: PrincipalDep) -> ProjectList:
    """The projects the token has a role in."""
    return ProjectList(projects=services.projects.list(principal))


@router.get("/{project}", responses=error_responses(404))
def get_project(project: str, services: ServicesDep) -> ProjectView:
    """A project and how much it holds."""
    return services.projects.get(project)


@router.delete("/{project}", status_code=204, responses=error_responses(404, 409))
def delete_project(project: str, services: ServicesDep) -> None:
    """Delete a project with its secrets, members, service accounts and tokens (installation
    admin); 409 naming them while it has nodes, aliases or models."""
    services.projects.delete(project)
