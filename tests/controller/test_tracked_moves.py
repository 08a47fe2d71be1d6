"""A tracked instance's status moves only as the transition table allows, by replacing its
frozen view; a move that cannot be stored is undone by putting the old view back."""

from __future__ import annotations

import pytest

from pier.controller.tracked import TrackedInstance
from pier.domain.errors import IllegalTransition
from pier.domain.instance_status import InstanceStatus, InstanceView
from pier.domain.names import InstanceId, NodeKey, NodeName, ProjectName

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
