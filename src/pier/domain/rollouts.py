"""The guarded rollout of an alias to a new node: a pure decision engine.

A rollout moves an alias's traffic to ``to_node`` step by step (``steps``, percent of the
alias's requests). Each step is held for ``bake_s``; meanwhile the new node's figures on
the alias's traffic during the step (requests, errors: 5xx and gateway errors, p95
latency from the gateway's histogram buckets) are compared with the limits:

* a limit exceeded once the step has seen ``min_requests`` requests rolls back at once
  (a clearly bad node does not get the whole bake to do harm);
* when the bake is over, a limit exceeded by whatever the step saw rolls back; a step
  that saw fewer than ``min_requests`` holds until it has (no evidence is no pass: a
  new node that takes no traffic, suspended say, never completes a rollout); otherwise
  the next step starts, or after the last one the rollout is complete;
* rolling back (or an abort) puts back the shares the alias had before the rollout.

Nothing here reads a clock or a socket: ``now`` (epoch seconds) and the gateway's
cumulative counters come in, the next state goes out. The state holds everything a
restarted control plane needs to go on where it was (the step, its deadline, the
counters at its start), so a rollout resumes rather than restarts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pier.domain.aliases import TOTAL_SHARE, AliasSpec, NodeRef
from pier.domain.errors import InvalidSpec
from pier.domain.event_kinds import EventKind
from pier.domain.specs import invalid_spec_from

MAX_ROLLOUT_STEPS: Final = 20
MAX_BAKE_S: Final = 7 * 24 * 3600.0
DEFAULT_MIN_REQUESTS: Final = 20
P95: Final = 0.95

Shares = tuple[tuple[str, int], ...]
"""An alias's (node, share) pairs, in the alias's order, summing to 100."""


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False
    )


class RolloutPlan(_Frozen):
    """What the user asked for: where to, in which steps, and the limits."""

    to_node: NodeRef
    """The node the alias's traffic moves to."""
    steps: Annotated[tuple[int, ...], Field(min_length=1, max_length=MAX_ROLLOUT_STEPS)]
    """Percent of the alias's requests the new node takes at each step (rising, 1-100)."""
    bake_s: Annotated[float, Field(gt=0, le=MAX_BAKE_S)]
    """How long each step is held and watched."""
    max_error_rate: Annotated[float, Field(ge=0, le=1)]
    """The largest share of the new node's requests that may fail (5xx or gateway error)."""
    max_p95_ms: Annotated[float, Field(gt=0)] | None = None
    """The slowest the new node's 95th percentile latency may be; None: not checked."""
    min_requests: Annotated[int, Field(ge=1, le=1_000_000)] = DEFAULT_MIN_REQUESTS
    """Requests a step must see to pass, and before a limit exceeded rolls back ahead of
    the bake's end."""

    @field_validator("steps")
    @classmethod
    def _rising(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        for index, percent in enumerate(steps):
            if not 1 <= percent <= TOTAL_SHARE:
                raise ValueError(f"step {percent} is not a percent from 1 to 100")
            if index and percent <= steps[index - 1]:
                raise ValueError(f"steps must rise: {percent} follows {steps[index - 1]}")
        return steps


def parse_rollout_plan(data: object) -> RolloutPlan:
    """Validate user input into a RolloutPlan, raising InvalidSpec naming the field."""
    try:
        return RolloutPlan.model_validate(data)
    except ValidationError as exc:
        raise invalid_spec_from(exc) from None


class TrafficCounts(_Frozen):
    """The gateway's cumulative counters of one node's requests through one alias."""

    requests: int = 0
    errors: int = 0
    """Answers with a 5xx status, the gateway's own errors included."""
    buckets: tuple[tuple[float, int], ...] = ()
    """(upper bound in seconds, requests at most that slow), cumulative, finite bounds
    rising."""
    timed: int | None = None
    """Requests in the histogram (its +Inf bucket); None: all of them. The gateway's
    refusals before any instance answered (503 no instance ready, say) are errors but
    have no latency."""

    @property
    def histogram_total(self) -> int:
        return self.requests if self.timed is None else self.timed

    def since(self, start: TrafficCounts) -> TrafficCounts:
        """What happened after ``start``; counters that went down were reset (a gateway
        restarted), so all of them count."""
        bounds = dict(start.buckets)
        was_reset = self.requests < start.requests or self.errors < start.errors
        was_reset = was_reset or self.histogram_total < start.histogram_total
        was_reset = was_reset or any(n < bounds.get(le, 0) for le, n in self.buckets)
        if was_reset:
            return self
        return TrafficCounts(
            requests=self.requests - start.requests,
            errors=self.errors - start.errors,
            buckets=tuple((le, n - bounds.get(le, 0)) for le, n in self.buckets),
            timed=None if self.timed is None else self.histogram_total - start.histogram_total,
        )


class StepFigures(_Frozen):
    """The new node's figures over one step."""

    requests: int
    errors: int
    error_rate: float
    """errors / requests; 0 without requests."""
    p95_ms: float | None
    """95th percentile latency, interpolated within the histogram's buckets as
    Prometheus' histogram_quantile does; None without requests."""

    @classmethod
    def of(cls, counts: TrafficCounts) -> StepFigures:
        rate = counts.errors / counts.requests if counts.requests else 0.0
        return cls(
            requests=counts.requests,
            errors=counts.errors,
            error_rate=rate,
            p95_ms=quantile_ms(P95, counts.buckets, counts.histogram_total),
        )


def quantile_ms(q: float, buckets: Sequence[tuple[float, int]], total: int) -> float | None:
    """The ``q`` quantile of a cumulative histogram, in milliseconds (None when empty).
    Beyond the largest finite bound it is that bound, as histogram_quantile has it."""
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0
    for upper_bound, count in buckets:
        if count >= rank:
            inside = count - lower_count
            fraction = (rank - lower_count) / inside if inside else 1.0
            return 1000.0 * (lower_bound + (upper_bound - lower_bound) * fraction)
        lower_bound, lower_count = upper_bound, count
    return 1000.0 * lower_bound if buckets else None


class RolloutPhase(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"


class RolloutAction(StrEnum):
    """What the latest decision did."""

    STARTED = "started"
    HOLD = "hold"
    """The step goes on: its bake is not over and no limit is exceeded."""
    ADVANCED = "advanced"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"


DECISION_EVENTS: Final = {
    RolloutAction.STARTED: EventKind.ROLLOUT_STARTED,
    RolloutAction.ADVANCED: EventKind.ROLLOUT_ADVANCED,
    RolloutAction.COMPLETED: EventKind.ROLLOUT_COMPLETED,
    RolloutAction.ROLLED_BACK: EventKind.ROLLOUT_ROLLED_BACK,
}
"""The event each decision is told by (holding is no decision)."""


class RolloutState(_Frozen):
    """A rollout as stored: the plan, where it is, what it saw, and its latest decision."""

    plan: RolloutPlan
    previous: Shares
    """The alias's shares before the rollout: what a roll back puts back."""
    step: int
    """Index into ``plan.steps`` of the step running (or the last one run)."""
    step_started_at: float
    bake_until: float
    """When the step's bake is over (epoch seconds)."""
    baseline: TrafficCounts | None
    """The gateway's counters when the step started; None until the first decision
    (a rollout started where no counters are read starts its bake then)."""
    figures: StepFigures
    """The new node's figures over the step so far."""
    passed: tuple[StepFigures, ...] = ()
    """The figures of the steps already passed."""
    phase: RolloutPhase = RolloutPhase.RUNNING
    action: RolloutAction = RolloutAction.STARTED
    why: str
    """The latest decision, for people."""
    decided_at: float

    @property
    def percent(self) -> int:
        """The new node's share at the current step."""
        return self.plan.steps[self.step]

    def shares(self) -> Shares:
        """The alias's shares the rollout stands for now; once it is complete, the nodes
        left with no share are dropped (so that they can be deleted)."""
        if self.phase is RolloutPhase.ROLLED_BACK:
            return self.previous
        shares = step_shares(self.previous, self.plan.to_node, self.percent)
        if self.phase is RolloutPhase.COMPLETED:
            return tuple((node, share) for node, share in shares if share > 0)
        return shares

    def applied_to(self, spec: AliasSpec) -> AliasSpec:
        """``spec`` with the shares the rollout stands for now (the rest as it is)."""
        nodes = [{"node": node, "share": share} for node, share in self.shares()]
        return AliasSpec.model_validate({**spec.model_dump(), "nodes": nodes})


def step_shares(previous: Shares, to_node: str, percent: int) -> Shares:
    """``to_node`` takes ``percent``; the other nodes share the rest in proportion to
    their previous shares (whole percents, largest remainders first)."""
    others = [(node, share) for node, share in previous if node != to_node]
    total = sum(share for _, share in others)
    rest = TOTAL_SHARE - percent
    exact = [(node, share * rest / total if total else 0.0) for node, share in others]
    whole = {node: math.floor(value) for node, value in exact}
    left = rest - sum(whole.values())
    by_remainder = sorted(exact, key=lambda item: item[1] - math.floor(item[1]), reverse=True)
    for node, _ in by_remainder[:left]:
        whole[node] += 1
    names = [node for node, _ in previous]
    if to_node not in names:
        names.append(to_node)
    return tuple((node, percent if node == to_node else whole[node]) for node in names)


def shares_of(spec: AliasSpec) -> Shares:
    return tuple((share.node, share.share) for share in spec.nodes)


def start_rollout(
    plan: RolloutPlan, current: Shares, *, now: float, counts: TrafficCounts | None = None
) -> RolloutState:
    """The first step of ``plan`` over an alias whose shares are ``current``; without
    ``counts`` the step's bake starts at the first decision, which takes them."""
    others = sum(share for node, share in current if node != plan.to_node)
    if others == 0:
        raise InvalidSpec("to_node", f"node {plan.to_node!r} already takes all of the traffic")
    if sum(share for node, share in current if node == plan.to_node) >= plan.steps[-1]:
        raise InvalidSpec("steps", f"node {plan.to_node!r} already takes {plan.steps[-1]}%")
    return RolloutState(
        plan=plan,
        previous=current,
        step=0,
        step_started_at=now,
        bake_until=now + plan.bake_s,
        baseline=counts,
        figures=StepFigures.of(TrafficCounts()),
        why=_step_why(plan, 0),
        decided_at=now,
    )


def decide(state: RolloutState, *, now: float, counts: TrafficCounts) -> RolloutState:
    """The rollout one tick later: ``counts`` are the gateway's cumulative counters of
    the new node's requests through the alias."""
    if state.phase is not RolloutPhase.RUNNING:
        return state
    if state.baseline is None:
        return state.model_copy(
            update={"baseline": counts, "step_started_at": now,
                    "bake_until": now + state.plan.bake_s, "action": RolloutAction.HOLD}
        )  # fmt: skip
    figures = StepFigures.of(counts.since(state.baseline))
    state = state.model_copy(update={"figures": figures})
    breach = _breach(state.plan, figures)
    if breach is not None and figures.requests >= state.plan.min_requests:
        return _rolled_back(state, now, f"step {state.percent}%: {breach}")
    if now < state.bake_until:
        return state.model_copy(update={"action": RolloutAction.HOLD})
    if breach is not None:
        return _rolled_back(state, now, f"step {state.percent}% baked: {breach}")
    if figures.requests < state.plan.min_requests:
        why = (
            f"step {state.percent}% baked but saw {figures.requests} of the "
            f"{state.plan.min_requests} requests (min_requests) it needs: holding"
        )
        return state.model_copy(update={"action": RolloutAction.HOLD, "why": why})
    if state.step + 1 == len(state.plan.steps):
        why = f"completed: {state.plan.to_node} takes {state.percent}%; {_seen(figures)}"
        return state.model_copy(
            update={"phase": RolloutPhase.COMPLETED, "action": RolloutAction.COMPLETED,
                    "passed": (*state.passed, figures), "why": why, "decided_at": now}
        )  # fmt: skip
    step = state.step + 1
    return state.model_copy(
        update={
            "step": step, "step_started_at": now, "bake_until": now + state.plan.bake_s,
            "baseline": counts, "figures": StepFigures.of(TrafficCounts()),
            "passed": (*state.passed, figures), "action": RolloutAction.ADVANCED,
            "why": f"{_step_why(state.plan, step)} (step {state.percent}% passed: "
            f"{_seen(figures)})",
            "decided_at": now,
        }
    )  # fmt: skip


def abort_rollout(state: RolloutState, *, now: float, actor: str) -> RolloutState:
    """Roll back now, on request; a finished rollout stays as it is."""
    if state.phase is not RolloutPhase.RUNNING:
        return state
    return _rolled_back(state, now, f"aborted by {actor} at step {state.percent}%")


def _rolled_back(state: RolloutState, now: float, why: str) -> RolloutState:
    shares = ", ".join(f"{node}={share}" for node, share in state.previous)
    return state.model_copy(
        update={"phase": RolloutPhase.ROLLED_BACK, "action": RolloutAction.ROLLED_BACK,
                "why": f"rolled back to {shares}: {why}", "decided_at": now}
    )  # fmt: skip


def _breach(plan: RolloutPlan, figures: StepFigures) -> str | None:
    """Which limit the figures exceed, said with both numbers; None when none is."""
    if figures.requests and figures.error_rate > plan.max_error_rate:
        return (
            f"error rate {figures.error_rate:.2%} ({figures.errors} of {figures.requests}) "
            f"is over max_error_rate {plan.max_error_rate:.2%}"
        )
    p95 = figures.p95_ms
    if plan.max_p95_ms is not None and p95 is not None and p95 > plan.max_p95_ms:
        return f"p95 {p95:.0f} ms is over max_p95_ms {plan.max_p95_ms:g} ms"
    return None


def _step_why(plan: RolloutPlan, step: int) -> str:
    return (
        f"step {step + 1} of {len(plan.steps)}: {plan.to_node} takes {plan.steps[step]}% "
        f"for {plan.bake_s:g} s"
    )


def _seen(figures: StepFigures) -> str:
    p95 = "-" if figures.p95_ms is None else f"{figures.p95_ms:.0f} ms"
    return f"{figures.requests} requests, error rate {figures.error_rate:.2%}, p95 {p95}"
