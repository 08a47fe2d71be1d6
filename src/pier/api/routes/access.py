from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from pier.api.deps import ServicesDep
from pier.api.errors import error_responses
from pier.domain.names import MAX_ID
from pier.domain.requests import MemberAdd, ServiceAccountCreate, TokenCreate
from pier.domain.views import (
    MemberList,
    MemberView,
    ServiceAccountList,
    ServiceAccountView,
    TokenCreated,
    TokenList,
)

router = APIRouter(
    prefix="/api/v1/projects/{project}",
    tags=["access"],
    responses=error_responses(401, 403, 404, 422, 503),
)


@router.post("/members", status_code=201, responses=error_responses(400))
def add_member(project: str, body: MemberAdd, services: ServicesDep) -> MemberView:
    """Give a user (made on first use) or a service account a role in the project."""
    return services.access.add_member(project, body.principal, body.role)


@router.get("/members")
def list_members(project: str, services: ServicesDep) -> MemberList:
    """The project's members and their roles."""
    return MemberList(members=services.access.members(project))


@router.delete("/members/{principal}", status_code=204)
def remove_member(project: str, principal: str, services: ServicesDep) -> None:
    """Take a member's role away: their tokens for the project stop working."""
    services.access.remove_member(project, principal)


@router.post("/service-accounts", status_code=201, responses=error_responses(400, 409))
def create_service_account(
    project: str, body: ServiceAccountCreate, services: ServicesDep
) -> ServiceAccountView:
    """A service account of the project with a role in it; give it tokens to use."""
    return services.access.create_service_account(project, body.name, body.role)


@router.get("/service-accounts")
def list_service_accounts(project: str, services: ServicesDep) -> ServiceAccountList:
    """The project's service accounts."""
    return ServiceAccountList(service_accounts=services.access.service_accounts(project))


@router.delete("/service-accounts/{name}", status_code=204)
def delete_service_account(project: str, name: str, services: ServicesDep) -> None:
    """Delete a service account with its tokens."""
    services.access.delete_service_account(project, name)


@router.post("/tokens", status_code=201, responses=error_responses(400, 409))
def create_token(project: str, body: TokenCreate, services: ServicesDep) -> TokenCreated:
    """A new token with a role in the project; its value is in this answer only."""
    return services.access.create_token(project, body)


@router.get("/tokens")
def list_tokens(project: str, services: ServicesDep) -> TokenList:
    """The project's tokens, never their values."""
    return TokenList(tokens=services.access.tokens(project))


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(
    project: str,
    token_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    services: ServicesDep,
) -> None:
    """Revoke a token: the API refuses it at once, the gateway within seconds."""
    services.access.revoke_token(project, token_id)
