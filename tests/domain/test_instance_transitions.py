import pytest

from pier.domain.errors import IllegalTransition
from pier.domain.instance_status import ALLOWED, InstanceStatus, InstanceView, advance, path_to

S = InstanceStatus
EVERY_MOVE = [(a, b) for a in S for b in S]


@pytest.mark.parametrize(("current", "new"), EVERY_MOVE)
def test_advance_follows_the_table(current: InstanceStatus, new: InstanceStatus) -> None:
    if new is current or new in ALLOWED[current]:
        assert advance(current, new) is new
    else:
        with pytest.raises(IllegalTransition):
            advance(current, new)


def test_deleting_is_final() -> None:
    assert ALLOWED[S.DELETING] == frozenset()


def test_every_status_can_be_deleted_except_deleting() -> None:
    for status in S:
        if status is not S.DELETING:
            assert S.DELETING in ALLOWED[status]


def test_path_to_records_every_intermediate_step() -> None:
    assert path_to(S.UNDEFINED, S.HEALTHY) == [S.CREATED, S.STARTED, S.PREPARING, S.HEALTHY]
    assert path_to(S.CREATED, S.PREPARING) == [S.STARTED, S.PREPARING]
    assert path_to(S.HEALTHY, S.UNHEALTHY) == [S.UNHEALTHY]
    assert path_to(S.HEALTHY, S.HEALTHY) == []


def test_path_to_refuses_going_back() -> None:
    with pytest.raises(IllegalTransition):
        path_to(S.HEALTHY, S.PREPARING)


def test_view_moved_to_returns_a_new_view_with_since() -> None:
    view = InstanceView("i-1", S.PREPARING, since=1.0)
    moved = view.moved_to(S.HEALTHY, now=5.0)
    assert (moved.status, moved.since) == (S.HEALTHY, 5.0)
    assert view.status is S.PREPARING
    with pytest.raises(IllegalTransition):
        moved.moved_to(S.CREATED, now=6.0)


def test_statuses_keep_their_public_spelling() -> None:
    assert [s.value for s in S] == [
        "Undefined", "Created", "Started", "Preparing", "Healthy", "Unhealthy", "Deleting",
    ]  # fmt: skip
