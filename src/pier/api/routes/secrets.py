from __future__ import annotations

from fastapi import APIRouter

from pier.api.deps import ActorDep, ServicesDep
from pier.api.errors import error_responses
from pier.domain.requests import SecretPut
from pier.domain.views import KeyRotated, SecretList, SecretWritten

router = APIRouter(
    prefix="/api/v1/projects/{project}/secrets",
    tags=["secrets"],
    responses=error_responses(401, 403, 404, 422, 503),
)


@router.put("/{name}", responses=error_responses(400))
def put_secret(
    project: str, name: str, body: SecretPut, services: ServicesDep, actor: ActorDep
) -> SecretWritten:
    """Create or replace a secret; its value is never returned."""
    return services.secrets.put(project, name, body.value, actor=actor)


@router.get("")
def list_secrets(project: str, services: ServicesDep) -> SecretList:
    """Names and keys of the project's secrets, never their values."""
    return SecretList(secrets=services.secrets.list(project))


@router.delete("/{name}", status_code=204)
def delete_secret(project: str, name: str, services: ServicesDep, actor: ActorDep) -> None:
    """Delete a secret."""
    services.secrets.delete(project, name, actor=actor)


keys_router = APIRouter(
    prefix="/api/v1/secrets", tags=["secrets"], responses=error_responses(401, 503)
)


@keys_router.post("/rotate-key")
def rotate_secrets_key(services: ServicesDep) -> KeyRotated:
    """Seal every secret value (and every node's secret_env) again with a new key."""
    return services.secrets.rotate_key()
