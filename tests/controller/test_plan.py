from pier.controller.plan import PlannedInstance, plan_node
from pier.domain.instance_status import InstanceStatus
from pier.domain.specs import parse_node_spec

S = InstanceStatus
SPEC = parse_node_spec(
    {"model": "iris", "min_instances": 2, "health": {"grace_s": 10, "start_timeout_s": 60}}
)


def inst(
    i: str,
    status: InstanceStatus = S.HEALTHY,
    *,
    since: float = 0.0,
    created_at: float = 0.0,
    generation: int = 1,
    exited: bool = False,
) -> PlannedInstance:
    return PlannedInstance(
        i, status, since=since, created_at=created_at, generation=generation, exited=exited
    )


def test_creates_up_to_the_target() -> None:
    plan = plan_node(SPEC, 2, [], generation=1, now=0.0)
    assert plan.create == 2
    assert plan.delete == ()


def test_steady_state_does_nothing() -> None:
    plan = plan_node(SPEC, 2, [inst("a"), inst("b")], generation=1, now=100.0)
    assert (plan.create, plan.delete, plan.reasons) == (0, (), ())


def test_exited_instance_is_replaced_after_backoff() -> None:
    plan = plan_node(SPEC, 2, [inst("a"), inst("b", exited=True)], generation=1, now=5.0)
    assert plan.delete == ("b",)
    assert plan.failed == ("b",)
    assert plan.create == 0  # the crash starts a backoff first
    later = plan_node(SPEC, 2, [inst("a")], generation=1, now=7.0, backoff_until=6.0)
    assert later.create == 1


def test_backoff_holds_creation() -> None:
    plan = plan_node(SPEC, 2, [inst("a")], generation=1, now=5.0, backoff_until=9.0)
    assert plan.create == 0
    assert "backoff" in plan.reasons[0]


def test_unhealthy_past_grace_is_replaced_but_not_before() -> None:
    young = plan_node(
        SPEC, 2, [inst("a"), inst("b", S.UNHEALTHY, since=95.0)], generation=1, now=100.0
    )
    assert young.delete == ()
    old = plan_node(
        SPEC, 2, [inst("a"), inst("b", S.UNHEALTHY, since=80.0)], generation=1, now=100.0
    )
    assert old.delete == ("b",)


def test_never_ready_within_start_timeout_is_replaced() -> None:
    plan = plan_node(
        SPEC, 2, [inst("a"), inst("b", S.PREPARING, created_at=10.0)], generation=1, now=71.0
    )
    assert plan.failed == ("b",)


def test_surplus_goes_not_healthy_first() -> None:
    plan = plan_node(SPEC, 2, [inst("a"), inst("b", S.PREPARING), inst("c")], generation=1, now=1.0)
    assert plan.delete == ("b",)


def test_rolling_update_surges_then_replaces_within_maintenance_limit() -> None:
    old = [inst("a"), inst("b")]
    first = plan_node(SPEC, 2, old, generation=2, now=1.0)
    assert first.create == 1  # maintenance_limit 1: one extra at a time
    assert first.delete == ("b",) or first.delete == ("a",)
    mid = plan_node(
        SPEC, 2, [inst("a"), inst("c", S.PREPARING, generation=2)], generation=2, now=2.0
    )
    assert mid.delete == ()  # would drop below target - maintenance_limit
    assert mid.create == 1


def test_deleting_node_removes_everything() -> None:
    plan = plan_node(
        SPEC, 2, [inst("a"), inst("b", S.DELETING)], generation=1, now=1.0, deleting=True
    )
    assert plan.delete == ("a",)
    assert plan.create == 0
