"""Event kinds keep their public spellings; the failure kinds are the ones that say so."""

from __future__ import annotations

from pier.domain.event_kinds import FAILURES, EventKind


def test_event_kinds_keep_their_spellings() -> None:
    assert EventKind.INSTANCE_FAILED == "instance_failed"
    assert EventKind.NODE_SCALED == "node_scaled"
    assert all(kind.value == kind.name.lower() for kind in EventKind)


def test_the_failure_kinds_are_those_named_failed() -> None:
    assert {k for k in EventKind if k.value.endswith("_failed")} == FAILURES
