"""The controller's lease: which `pier up` of those sharing a store runs the controller.

One row in the store names the holder, its term and when the lease runs out. The holder
renews it well before then; another `pier up` takes it only once it has run out, with the
next term. A term is never reused, so a holder that was paused past its lease and finds
another term in the store knows at once that it no longer leads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Lease:
    holder: str
    """Who holds it: ``host:port pid N`` of a `pier up` (see server.py)."""
    term: int
    """1 for the first holder, one more at each change of holder (or each taking of an
    expired lease)."""
    expires_at: datetime
    """The holder leads until then unless it renews."""

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at
