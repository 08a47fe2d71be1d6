"""The audit log: kept by the API's middleware (pier.api.audit), read with filters."""

from __future__ import annotations

from pier.domain.audit import AuditEntry, AuditPage, AuditQuery
from pier.store.repository import Repository


class AuditService:
    def __init__(self, repo: Repository, *, max_entries: int) -> None:
        self._repo = repo
        self._max_entries = max_entries

    def record(self, entry: AuditEntry) -> None:
        """Keep one entry; the oldest past ``max_entries`` go."""
        self._repo.add_audit_entry(entry, keep=self._max_entries)

    def page(self, query: AuditQuery) -> AuditPage:
        """Entries matching ``query``, newest first, and the cursor of the next page."""
        entries = self._repo.list_audit(query)
        more = len(entries) == query.limit
        return AuditPage(entries=entries, next_before=entries[-1].id if more and entries else None)
