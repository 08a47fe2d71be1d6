"""The leases of the store (pier.domain.lease): taken, renewed and given up under the
store's write lock, so two `pier up` asking at once never both get one.

Times are the callers' (``now``): `pier up` processes sharing a store are expected to
have clocks that agree to well under a lease's length (NTP), as for any lease.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from pier.domain.lease import Lease
from pier.store.repository import take_write_lock, transaction
from pier.store.tables import LeaseRow

CONTROLLER = "controller"
"""The lease of the one `pier up` that runs the controller."""


class Leases:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def acquire(
        self,
        holder: str,
        *,
        now: datetime,
        lease_s: float,
        restarted: bool = False,
        sole: bool = False,
        name: str = CONTROLLER,
    ) -> Lease | None:
        """Take the lease for ``lease_s`` if it is free, run out, or ``holder``'s own term
        still running (then renewed); None while another holds it. A lease taken after
        it ran out gets the next term, even by its last holder. ``restarted``: the
        caller is a new process under the name of one known dead (it holds that one's
        lock), whose term it takes over at once, as the next. ``sole``: no other process
        can use the store (SQLite under the data dir's lock): taken whatever it says."""
        with self._locked() as s:
            row = s.get(LeaseRow, name)
            if row is None:
                row = LeaseRow(name=name, holder=holder, term=1, expires_at=now, renewed_at=now)
                s.add(row)
            elif sole or _lease(row).is_expired(now) or (restarted and row.holder == holder):
                row.holder, row.term = holder, row.term + 1
            elif row.holder != holder:
                return None
            return _extend(row, now, lease_s)

    def renew(
        self, holder: str, term: int, *, now: datetime, lease_s: float, name: str = CONTROLLER
    ) -> Lease | None:
        """Extend ``holder``'s lease of ``term``; None if it no longer holds that term
        (taken by another, or run out: a lost lease is taken again only by acquire)."""
        with self._locked() as s:
            row = s.get(LeaseRow, name)
            if row is None or (row.holder, row.term) != (holder, term):
                return None
            if _lease(row).is_expired(now):
                return None
            return _extend(row, now, lease_s)

    def release(self, holder: str, term: int, *, now: datetime, name: str = CONTROLLER) -> None:
        """End ``holder``'s lease of ``term`` now, so that another takes it at once."""
        with self._locked() as s:
            row = s.get(LeaseRow, name)
            if row is not None and (row.holder, row.term) == (holder, term):
                row.expires_at = min(_utc(row.expires_at), now)

    def current(self, name: str = CONTROLLER) -> Lease | None:
        """The lease as stored (maybe run out), or None if nobody ever took it."""
        with self._transaction() as s:
            row = s.get(LeaseRow, name)
            return None if row is None else _lease(row)

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with transaction(self._sessions) as session:
            yield session

    @contextmanager
    def _locked(self) -> Iterator[Session]:
        with self._transaction() as s:
            take_write_lock(s)
            yield s


def _extend(row: LeaseRow, now: datetime, lease_s: float) -> Lease:
    row.expires_at = now + timedelta(seconds=lease_s)
    row.renewed_at = now
    return _lease(row)


def _lease(row: LeaseRow) -> Lease:
    return Lease(row.holder, row.term, _utc(row.expires_at))


def _utc(value: datetime) -> datetime:
    """SQLite gives back naive datetimes; they were stored in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
