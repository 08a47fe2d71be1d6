"""Guarded rollouts driven by the reconcile loop, in-process on a real store, with the
gateway's counters faked (a settable mapping) and a settable clock: a healthy rollout
advances after each bake and completes, errors roll it back, no figures decide nothing,
and a restarted controller goes on at the step and deadline it was at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.controller.fake_runtime import FakeClock, FakeRuntime, add_image_node, controllers

from pier.controller.rollouts import AliasNodeCounts
from pier.domain.rollouts import RolloutPhase, TrafficCounts
from pier.services.aliases import AliasService
from pier.services.rollouts import RolloutService
from pier.store.repository import Repository

PLAN = {"to_node": "v2", "steps": [50, 100], "bake_s": 2, "max_error_rate": 0.01,
        "max_p95_ms": 500, "min_requests": 10}  # fmt: skip
KEY = ("default", "prod", "v2")


@pytest.fixture
def repo(repo: Repository) -> Repository:
    for name in ("v1", "v2"):
        add_image_node(repo, name, min_instances=0)
    AliasService(repo).create("default", "prod", {"nodes": [{"node": "v1"}]}, actor="a")
    return repo


class FakeCounts:
    """The gateway's counters as a test sets them; ``answering`` False: no answer."""

    def __init__(self) -> None:
        self.counts = TrafficCounts()
        self.answering = True

    async def __call__(self) -> AliasNodeCounts | None:
        return {KEY: self.counts} if self.answering else None

    def add(self, requests: int, errors: int = 0) -> None:
        """``requests`` more, each under 100 ms."""
        total = self.counts.requests + requests
        self.counts = TrafficCounts(
            requests=total, errors=self.counts.errors + errors, buckets=((0.1, total),)
        )


def shares(repo: Repository) -> list[tuple[str, int]]:
    return [(s.node, s.share) for s in repo.get_alias("default", "prod").spec.nodes]


def phase(repo: Repository) -> Any:
    record = repo.get_rollout("default", "prod")
    assert record is not None
    return record.state


async def test_a_healthy_rollout_advances_after_each_bake_and_completes(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        clock, counts = FakeClock(), FakeCounts()
        controller = make(FakeRuntime(), clock=clock, alias_counts=counts)
        RolloutService(repo, clock=clock).start("default", "prod", PLAN, actor="admin")
        assert shares(repo) == [("v1", 50), ("v2", 50)]
        await controller.tick()  # the bake starts at the first look at the counters
        assert phase(repo).bake_until == clock() + 2
        counts.add(100)
        clock.advance(1.9)
        await controller.tick()
        assert phase(repo).step == 0 and phase(repo).figures.requests == 100
        clock.advance(0.1)
        await controller.tick()
        assert phase(repo).step == 1 and shares(repo) == [("v1", 0), ("v2", 100)]
        counts.add(50)
        clock.advance(2)
        await controller.tick()
        assert phase(repo).phase is RolloutPhase.COMPLETED
        assert shares(repo) == [("v2", 100)]
        kinds = [e.kind for e in repo.list_events("default", "v2")]
        assert kinds[-3:] == ["rollout_started", "rollout_advanced", "rollout_completed"]


async def test_errors_over_the_limit_roll_back_by_themselves(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        clock, counts = FakeClock(), FakeCounts()
        controller = make(FakeRuntime(), clock=clock, alias_counts=counts)
        RolloutService(repo, clock=clock).start("default", "prod", PLAN, actor="admin")
        await controller.tick()
        counts.add(95)
        counts.add(5, errors=5)  # 5% of the new node's requests fail
        clock.advance(0.5)
        await controller.tick()
        state = phase(repo)
        assert state.phase is RolloutPhase.ROLLED_BACK and shares(repo) == [("v1", 100)]
        assert "error rate 5.00% (5 of 100)" in state.why


async def test_no_figures_decide_nothing_and_a_restart_goes_on_where_it_was(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        clock, counts = FakeClock(), FakeCounts()
        runtime = FakeRuntime()
        first = make(runtime, clock=clock, alias_counts=counts)
        RolloutService(repo, clock=clock).start("default", "prod", PLAN, actor="admin")
        await first.tick()
        deadline = phase(repo).bake_until
        counts.add(100)
        counts.answering = False  # the gateway is away past the bake's end
        clock.advance(5)
        for _ in range(3):
            await first.tick()
        assert phase(repo).step == 0 and phase(repo).bake_until == deadline
        await first.stop(stop_instances=False)

        counts.answering = True
        second = make(runtime, clock=clock, alias_counts=counts)
        await second.tick()  # the bake it was in is over: it advances, not restarts
        state = phase(repo)
        assert (state.step, state.passed[0].requests) == (1, 100)
        assert state.bake_until == clock() + 2
