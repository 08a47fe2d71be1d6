"""The controller's lease on every store: taken when free, renewed by its holder only,
taken by another only once run out (with the next term), and never renewed under a term
that is no longer the store's (a stale leader is fenced). Times are passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from pier.store.leases import Leases

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LEASE_S = 6.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def leases(engine: Engine) -> Leases:
    return Leases(engine)


def test_a_free_lease_is_taken_and_renewed_by_its_holder(leases: Leases) -> None:
    assert leases.current() is None
    first = leases.acquire("a", now=at(0), lease_s=LEASE_S)
    assert first is not None and (first.holder, first.term) == ("a", 1)
    assert first.expires_at == at(6)
    renewed = leases.renew("a", 1, now=at(2), lease_s=LEASE_S)
    assert renewed is not None and renewed.term == 1 and renewed.expires_at == at(8)
    assert leases.current() == renewed


def test_another_waits_until_the_lease_has_run_out_then_takes_the_next_term(
    leases: Leases,
) -> None:
    leases.acquire("a", now=at(0), lease_s=LEASE_S)
    assert leases.acquire("b", now=at(5.9), lease_s=LEASE_S) is None
    assert leases.renew("b", 1, now=at(5.9), lease_s=LEASE_S) is None
    taken = leases.acquire("b", now=at(6), lease_s=LEASE_S)
    assert taken is not None and (taken.holder, taken.term) == ("b", 2)
    current = leases.current()
    assert current is not None and current.holder == "b"


def test_a_stale_leader_cannot_renew_and_gets_a_new_term_only_when_free(
    leases: Leases,
) -> None:
    """The old leader wakes up after a pause: its term is gone, whoever holds it now."""
    leases.acquire("a", now=at(0), lease_s=LEASE_S)
    leases.acquire("b", now=at(7), lease_s=LEASE_S)
    assert leases.renew("a", 1, now=at(8), lease_s=LEASE_S) is None
    assert leases.acquire("a", now=at(8), lease_s=LEASE_S) is None
    assert leases.renew("b", 2, now=at(8), lease_s=LEASE_S) is not None
    # run out with nobody else asking: even its own holder renews it no more
    assert leases.renew("b", 2, now=at(20), lease_s=LEASE_S) is None
    again = leases.acquire("b", now=at(20), lease_s=LEASE_S)
    assert again is not None and again.term == 3


def test_a_restarted_holder_and_a_sole_process_take_it_at_once(leases: Leases) -> None:
    leases.acquire("a", now=at(0), lease_s=LEASE_S)
    assert leases.acquire("a", now=at(1), lease_s=LEASE_S).term == 1  # type: ignore[union-attr]
    restarted = leases.acquire("a", now=at(2), lease_s=LEASE_S, restarted=True)
    assert restarted is not None and restarted.term == 2
    assert leases.acquire("b", now=at(3), lease_s=LEASE_S, restarted=True) is None
    sole = leases.acquire("b", now=at(3), lease_s=LEASE_S, sole=True)
    assert sole is not None and (sole.holder, sole.term) == ("b", 3)


def test_a_released_lease_is_taken_at_once(leases: Leases) -> None:
    leases.acquire("a", now=at(0), lease_s=LEASE_S)
    leases.release("b", 1, now=at(1))  # not its holder: nothing changes
    assert leases.acquire("b", now=at(1), lease_s=LEASE_S) is None
    leases.release("a", 1, now=at(1))
    taken = leases.acquire("b", now=at(1), lease_s=LEASE_S)
    assert taken is not None and taken.term == 2
