"""A tracked instance's status moves only as the transition table allows, by replacing its
frozen view; a move that cannot be stored is undone by putting the old view back. What
the runtime reports is a frozen RuntimeFacts, replaced as a whole."""

from __future__ import annotations

import pytest

from pier.controller.tracked import TrackedInstance
from pier.domain.errors import IllegalTransition
from pier.domain.instance_status import InstanceStatus, InstanceView
from pier.domain.names import InstanceId, NodeKey, NodeName, ProjectName
from pier.runtimes.base import Observed

S = InstanceStatus


def tracked() -> TrackedInstance:
    instance_id = InstanceId("web-1")
    return TrackedInstance(
        instance_id=instance_id, key=NodeKey(ProjectName("default"), NodeName("web")),
        runtime="local", generation=1, created_at=1.0,
        view=InstanceView(instance_id, S.PREPARING, since=1.0),
    )  # fmt: skip


def test_a_move_replaces_the_view_and_returns_the_old_one() -> None:
    instance = tracked()
    before = instance.move(S.HEALTHY, now=5.0)
    assert (instance.status, instance.since) == (S.HEALTHY, 5.0)
    assert (before.status, before.since) == (S.PREPARING, 1.0)  # unchanged: frozen


def test_a_move_the_table_forbids_raises_and_changes_nothing() -> None:
    instance = tracked()
    instance.move(S.DELETING, now=2.0)
    with pytest.raises(IllegalTransition):
        instance.move(S.HEALTHY, now=3.0)
    assert (instance.status, instance.since) == (S.DELETING, 2.0)


def test_runtime_facts_are_replaced_as_a_whole_keeping_what_is_not_repeated() -> None:
    instance = tracked()
    first = Observed(InstanceId("web-1"), instance.key, "running", "http://127.0.0.1:1", pid=7)
    assert instance.observe(first)  # a new handle: the row must be saved
    facts = instance.facts
    again = Observed(InstanceId("web-1"), instance.key, "exited", None, exit_code=3)
    assert not instance.observe(again)  # no handle reported: the old one is kept
    assert (instance.endpoint, instance.pid, instance.exited) == ("http://127.0.0.1:1", 7, True)
    assert (facts.exited, facts.exit_code) == (False, None)  # the old facts: unchanged


def test_a_vanished_instance_shows_as_exited() -> None:
    instance = tracked()
    instance.vanish()
    assert instance.exited
