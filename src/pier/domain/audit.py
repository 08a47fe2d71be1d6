"""The audit log's vocabulary: one entry per change asked of the API, whatever came of it.

An entry says who (the caller's name), what (the operation and its target), when, from
where (the client's address) and the outcome. It never holds a body, a header or a
secret's value: only names taken from the path and the error's type.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from pier.domain.views import Timestamp


class AuditOutcome(StrEnum):
    OK = "ok"
    """The change was made (2xx, 3xx)."""
    REFUSED = "refused"
    """pier refused it: no or a wrong token, a quota, a bad value, a conflict (4xx)."""
    FAILED = "failed"
    """pier could not make it (5xx)."""

    @classmethod
    def of_status(cls, status: int) -> AuditOutcome:
        if status < 400:
            return cls.OK
        return cls.REFUSED if status < 500 else cls.FAILED


class AuditEntry(BaseModel):
    """One change asked of the REST API."""

    model_config = ConfigDict(extra="ignore", use_attribute_docstrings=True, frozen=True)

    id: int
    time: Timestamp
    actor: str
    """Who: the name of the token's holder; ``anonymous`` without a valid token."""
    project: str | None
    """The project the change was in; None for installation-wide ones."""
    action: str
    """What: the operation (create_node, put_secret, set_project_limits...)."""
    target: str | None
    """The name the path gave (the node, alias, model or secret), if any."""
    method: str
    path: str
    """The request's path (no query string)."""
    client: str | None
    """From where: the client's address."""
    status: int
    """The HTTP status answered."""
    outcome: AuditOutcome
    error: str | None = None
    """The error's type when refused or failed (unauthorized, quota_exceeded...)."""


class AuditPage(BaseModel):
    """Entries, newest first; ``next_before`` asks for the page after this one."""

    model_config = ConfigDict(extra="ignore", use_attribute_docstrings=True)

    entries: list[AuditEntry]
    next_before: int | None = None
    """Pass as ``before`` for older entries; None: there are none."""


class AuditQuery(BaseModel):
    """Filters of the audit log; each one given narrows it."""

    model_config = ConfigDict(frozen=True)

    project: str | None = None
    actor: str | None = None
    action: str | None = None
    outcome: AuditOutcome | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    """Only entries older than this id (paging)."""
    limit: int = Field(default=100, ge=1, le=1000)
