from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from pier.api.deps import ServicesDep
from pier.api.errors import error_responses
from pier.domain.audit import AuditOutcome, AuditPage, AuditQuery
from pier.domain.names import MAX_ID

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=error_responses(401, 422, 503))


@router.get("")
def list_audit(
    services: ServicesDep,
    project: Annotated[str | None, Query(description="Only changes in this project.")] = None,
    actor: Annotated[str | None, Query(description="Only changes by this caller.")] = None,
    action: Annotated[
        str | None, Query(description="Only this operation (create_node...).")
    ] = None,
    outcome: Annotated[AuditOutcome | None, Query(description="ok, refused or failed.")] = None,
    since: Annotated[
        datetime | None, Query(description="Only changes at or after this time.")
    ] = None,
    until: Annotated[datetime | None, Query(description="Only changes before this time.")] = None,
    before: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_ID,
            description="Only entries older than this id: the previous page's next_before.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Entries per page.")] = 100,
) -> AuditPage:
    """Changes asked of the API (who, what, when, from where, outcome), newest first."""
    query = AuditQuery(
        project=project, actor=actor, action=action, outcome=outcome, since=since,
        until=until, before=before, limit=limit,
    )  # fmt: skip
    return services.audit.page(query)
