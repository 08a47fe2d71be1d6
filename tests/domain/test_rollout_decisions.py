"""The rollout decision engine, with a clock passed in: steps advance after their bake,
a limit exceeded rolls back (at once once enough requests were seen), the figures are
those of the step, and a stored state goes on where it was."""

from __future__ import annotations

from typing import Any

import pytest

from pier.domain.errors import InvalidSpec
from pier.domain.rollouts import (
    RolloutAction,
    RolloutPhase,
    RolloutState,
    StepFigures,
    TrafficCounts,
    abort_rollout,
    decide,
    parse_rollout_plan,
    quantile_ms,
    start_rollout,
    step_shares,
)

T0 = 1_000_000.0
BEFORE = (("v1", 90), ("v2", 10))


def plan(**changes: Any) -> Any:
    fields = {"to_node": "v3", "steps": [10, 50, 100], "bake_s": 60, "max_error_rate": 0.01,
              "max_p95_ms": 200, "min_requests": 20, **changes}  # fmt: skip
    return parse_rollout_plan(fields)


def counts(requests: int, errors: int = 0, *, slow: int = 0) -> TrafficCounts:
    """``requests`` so far, ``slow`` of them 0.5-1 s long, the others under 50 ms."""
    fast = requests - slow
    buckets = ((0.05, fast), (0.1, fast), (0.5, fast), (1.0, requests))
    return TrafficCounts(requests=requests, errors=errors, buckets=buckets)


def started(**changes: Any) -> RolloutState:
    return start_rollout(plan(**changes), BEFORE, now=T0, counts=counts(1000, 3))


@pytest.mark.parametrize(
    ("previous", "to_node", "percent", "expected"),
    [
        (BEFORE, "v3", 10, (("v1", 81), ("v2", 9), ("v3", 10))),
        (BEFORE, "v2", 50, (("v1", 50), ("v2", 50))),
        ((("a", 50), ("b", 50)), "c", 33, (("a", 34), ("b", 33), ("c", 33))),
        (BEFORE, "v3", 100, (("v1", 0), ("v2", 0), ("v3", 100))),
    ],
)
def test_the_new_node_takes_its_step_and_the_others_share_the_rest(
    previous: Any, to_node: str, percent: int, expected: Any
) -> None:
    shares = step_shares(previous, to_node, percent)
    assert shares == expected and sum(share for _, share in shares) == 100


def test_a_healthy_rollout_holds_each_bake_then_advances_and_completes() -> None:
    state = started()
    assert state.shares() == (("v1", 81), ("v2", 9), ("v3", 10))
    state = decide(state, now=T0 + 59, counts=counts(1500, 3))
    assert (state.action, state.step, state.figures.requests) == (RolloutAction.HOLD, 0, 500)
    state = decide(state, now=T0 + 60, counts=counts(1600, 3))
    assert (state.action, state.percent, state.bake_until) == (RolloutAction.ADVANCED, 50, T0 + 120)
    assert state.passed[0].requests == 600 and state.figures.requests == 0
    assert "step 10% passed: 600 requests, error rate 0.00%" in state.why
    state = decide(state, now=T0 + 120, counts=counts(2000, 3))
    state = decide(state, now=T0 + 180, counts=counts(2500, 3))
    assert (state.phase, state.action) == (RolloutPhase.COMPLETED, RolloutAction.COMPLETED)
    assert state.shares() == (("v3", 100),)  # the others can be deleted now
    assert [f.requests for f in state.passed] == [600, 400, 500]
    assert decide(state, now=T0 + 999, counts=counts(0, 0, slow=0)) == state  # finished


def test_an_error_rate_over_the_limit_rolls_back_before_the_bake_ends() -> None:
    state = decide(started(), now=T0 + 5, counts=counts(1019, 4))  # 1 of 19: too few to judge
    assert state.action is RolloutAction.HOLD
    state = decide(state, now=T0 + 6, counts=counts(1020, 4))  # 1 of 20 = 5% > 1%
    assert (state.phase, state.action) == (RolloutPhase.ROLLED_BACK, RolloutAction.ROLLED_BACK)
    assert state.shares() == BEFORE
    assert "error rate 5.00% (1 of 20) is over max_error_rate 1.00%" in state.why
    assert state.why.startswith("rolled back to v1=90, v2=10: step 10%")


def test_a_breach_on_few_requests_rolls_back_when_the_bake_ends() -> None:
    state = decide(started(), now=T0 + 30, counts=counts(1002, 4))
    assert state.action is RolloutAction.HOLD
    state = decide(state, now=T0 + 60, counts=counts(1002, 4))
    assert state.phase is RolloutPhase.ROLLED_BACK and "baked" in state.why


def test_a_step_that_saw_too_few_requests_holds_after_its_bake() -> None:
    state = decide(started(), now=T0 + 60, counts=counts(1019, 3))
    assert (state.action, state.step) == (RolloutAction.HOLD, 0)
    assert "saw 19 of the 20 requests (min_requests) it needs" in state.why
    state = decide(state, now=T0 + 61, counts=counts(1020, 3))
    assert (state.action, state.step) == (RolloutAction.ADVANCED, 1)


def test_a_slow_p95_rolls_back() -> None:
    state = decide(started(), now=T0 + 10, counts=counts(1100, 3, slow=10))
    assert state.figures.p95_ms == pytest.approx(750.0)  # 10 of 100 between 0.5 and 1 s
    assert state.phase is RolloutPhase.ROLLED_BACK
    assert "p95" in state.why and "max_p95_ms 200 ms" in state.why


def test_p95_is_interpolated_within_its_bucket() -> None:
    buckets = ((0.1, 50), (0.25, 90), (0.5, 100))
    assert quantile_ms(0.95, buckets, 100) == pytest.approx(375.0)
    assert quantile_ms(0.95, buckets, 200) == pytest.approx(500.0)  # beyond: the last bound
    assert quantile_ms(0.95, buckets, 0) is None


def test_counters_that_went_down_were_reset_and_count_from_zero() -> None:
    state = decide(started(), now=T0 + 10, counts=counts(30, 0))  # the gateway restarted
    assert state.figures == StepFigures.of(counts(30, 0))


def test_abort_rolls_back_now_and_a_finished_rollout_stays() -> None:
    aborted = abort_rollout(started(), now=T0 + 1, actor="admin")
    assert aborted.phase is RolloutPhase.ROLLED_BACK and aborted.shares() == BEFORE
    assert "aborted by admin at step 10%" in aborted.why
    assert abort_rollout(aborted, now=T0 + 2, actor="admin") == aborted


def test_a_rollout_started_without_counters_bakes_from_its_first_decision() -> None:
    state = start_rollout(plan(), BEFORE, now=T0, counts=None)
    state = decide(state, now=T0 + 7, counts=counts(500, 1))
    assert (state.baseline, state.bake_until, state.step) == (counts(500, 1), T0 + 67, 0)
    state = decide(state, now=T0 + 66, counts=counts(600, 1))
    assert state.action is RolloutAction.HOLD and state.figures.requests == 100


def test_a_stored_state_goes_on_at_its_step_and_deadline() -> None:
    state = decide(started(), now=T0 + 60, counts=counts(1100, 3))
    restored = RolloutState.model_validate_json(state.model_dump_json())
    assert restored == state
    held = decide(restored, now=T0 + 100, counts=counts(1200, 3))
    assert (held.step, held.bake_until, held.figures.requests) == (1, T0 + 120, 100)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"steps": [50, 10]}, "steps"),
        ({"steps": [0, 100]}, "steps"),
        ({"steps": []}, "steps"),
        ({"bake_s": 0}, "bake_s"),
        ({"max_error_rate": 1.5}, "max_error_rate"),
        ({"to_node": "Bad_Name"}, "to_node"),
        ({"bake": 5}, "bake"),
    ],
)
def test_a_bad_plan_names_its_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        plan(**changes)
    assert caught.value.field == field


def test_a_node_that_already_takes_the_traffic_cannot_be_rolled_out_to() -> None:
    with pytest.raises(InvalidSpec) as caught:
        start_rollout(plan(to_node="v1"), (("v1", 100),), now=T0, counts=counts(0))
    assert caught.value.field == "to_node"
    with pytest.raises(InvalidSpec) as caught:
        start_rollout(plan(to_node="v1", steps=[50]), BEFORE, now=T0, counts=counts(0))
    assert caught.value.field == "steps"
