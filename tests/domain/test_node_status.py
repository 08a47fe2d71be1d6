import pytest

from pier.domain.node_status import NodeStatus, derive_node_status


@pytest.mark.parametrize(
    ("healthy", "minimum", "reached", "deleting", "expected"),
    [
        (0, 2, False, False, NodeStatus.CREATED),
        (1, 2, False, False, NodeStatus.CREATED),
        (2, 2, False, False, NodeStatus.HEALTHY),
        (3, 2, True, False, NodeStatus.HEALTHY),
        (1, 2, True, False, NodeStatus.UNHEALTHY),
        (0, 0, False, False, NodeStatus.HEALTHY),
        (2, 2, True, True, NodeStatus.DELETING),
    ],
)
def test_node_status_is_derived_from_healthy_instances(
    healthy: int, minimum: int, reached: bool, deleting: bool, expected: NodeStatus
) -> None:
    status = derive_node_status(
        healthy=healthy, minimum=minimum, reached_minimum_once=reached, deleting=deleting
    )
    assert status is expected


@pytest.mark.parametrize(
    ("healthy", "deleting", "expected"),
    [
        (0, False, NodeStatus.SUSPENDED),
        (2, False, NodeStatus.SUSPENDED),
        (0, True, NodeStatus.DELETING),
    ],
)
def test_a_suspended_node_is_suspended_while_its_instances_drain_until_deleted(
    healthy: int, deleting: bool, expected: NodeStatus
) -> None:
    status = derive_node_status(
        healthy=healthy, minimum=2, reached_minimum_once=True, deleting=deleting, suspended=True
    )
    assert status is expected
