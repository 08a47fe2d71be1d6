from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from pier.api.deps import ActorDep, ServicesDep

router = APIRouter(prefix="/api/v1/projects/{project}/secrets", tags=["secrets"])


class SecretPut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: dict[str, str]


@router.put("/{name}")
def put_secret(
    project: str, name: str, body: SecretPut, services: ServicesDep, actor: ActorDep
) -> dict[str, Any]:
    """Create or replace a secret; its value is never returned."""
    return services.secrets.put(project, name, body.value, actor=actor)


@router.get("")
def list_secrets(project: str, services: ServicesDep) -> dict[str, Any]:
    """Names and keys of the project's secrets, never their values."""
    return {"secrets": services.secrets.list(project)}


@router.delete("/{name}", status_code=204)
def delete_secret(project: str, name: str, services: ServicesDep, actor: ActorDep) -> None:
    services.secrets.delete(project, name, actor=actor)
