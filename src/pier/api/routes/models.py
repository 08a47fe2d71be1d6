from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from pier.api.deps import ActorDep, ServicesDep

router = APIRouter(prefix="/api/v1/projects/{project}/models", tags=["models"])


@router.post("/{name}", status_code=201)
async def push_model(
    project: str,
    name: str,
    request: Request,
    services: ServicesDep,
    actor: ActorDep,
    format: str,
    trust: bool = False,
    filename: str | None = None,
) -> dict[str, Any]:
    """Upload a model file (raw body) as the next version of ``name``. Over
    ``models.max_upload_bytes`` it is 413, told by Content-Length before the body is read."""
    length = request.headers.get("content-length", "")
    return await services.models.push(
        project, name, request.stream(), fmt=format, trust=trust, actor=actor,
        declared_bytes=int(length) if length.isdigit() else None,
    )  # fmt: skip


@router.get("")
def list_models(project: str, services: ServicesDep) -> dict[str, Any]:
    return {"models": services.models.list(project)}


@router.get("/{name}")
def get_model(project: str, name: str, services: ServicesDep) -> dict[str, Any]:
    return {"name": name, "versions": services.models.list(project, name)}


@router.delete("/{name}")
def delete_model(
    project: str,
    name: str,
    services: ServicesDep,
    actor: ActorDep,
    version: Annotated[int | None, Query(ge=1, description="Only this version.")] = None,
) -> dict[str, Any]:
    """Delete a model's versions (all, or one); 409 naming the nodes while any uses them."""
    return {"name": name, "deleted": services.models.delete(project, name, version, actor=actor)}
