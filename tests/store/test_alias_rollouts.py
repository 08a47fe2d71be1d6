"""An alias's rollout in the store and its use cases, on a real SQLite file: starting
gives the alias its first step's shares, one rollout runs at a time, aborting puts back
the shares of before, each decision is an event, and `alias get` shows the state."""

from __future__ import annotations

import pytest

from pier.domain.errors import InvalidSpec, RolloutNotFound, RolloutRunning
from pier.domain.rollouts import RolloutPhase, TrafficCounts, decide
from pier.domain.specs import parse_node_spec
from pier.services.aliases import AliasService
from pier.services.rollouts import RolloutService
from pier.store.repository import Repository

SPEC = {"image": "127.0.0.1:5000/echo:1", "port": 8080}
PLAN = {"to_node": "v3", "steps": [10, 100], "bake_s": 2, "max_error_rate": 0.01}
T0 = 1_000_000.0


@pytest.fixture
def repo(repo: Repository) -> Repository:
    for name in ("v1", "v2", "v3"):
        repo.add_node("default", name, parse_node_spec(SPEC), runtime="docker")
    AliasService(repo).create(
        "default", "prod", {"nodes": [{"node": "v1", "share": 90}, {"node": "v2"}]}, actor="a"
    )
    return repo


def shares(repo: Repository) -> list[tuple[str, int]]:
    return [(s.node, s.share) for s in repo.get_alias("default", "prod").spec.nodes]


def kinds(repo: Repository) -> list[str]:
    return [e.kind for e in repo.list_events("default", "v3")]


def test_a_rollout_sets_its_steps_shares_and_abort_puts_back_the_old_ones(
    repo: Repository,
) -> None:
    rollouts = RolloutService(repo, clock=lambda: T0)
    started = rollouts.start("default", "prod", PLAN, actor="admin")
    assert (started.phase, started.step, started.percent) == ("running", 1, 10)
    assert shares(repo) == [("v1", 81), ("v2", 9), ("v3", 10)]
    with pytest.raises(RolloutRunning, match="rolling out to 'v3'"):
        rollouts.start("default", "prod", PLAN, actor="admin")
    view = AliasService(repo).get("default", "prod")
    assert view.rollout is not None and view.rollout.percent == 10

    aborted = rollouts.abort("default", "prod", actor="admin")
    assert aborted.phase == "rolled_back" and "aborted by admin" in aborted.why
    assert shares(repo) == [("v1", 90), ("v2", 10)]
    assert rollouts.abort("default", "prod", actor="admin") == aborted  # nothing runs now
    assert kinds(repo) == ["rollout_started", "rollout_rolled_back"]


def test_a_decision_is_stored_with_its_shares_and_event(repo: Repository) -> None:
    RolloutService(repo, clock=lambda: T0).start("default", "prod", PLAN, actor="admin")
    (record,) = repo.running_rollouts()
    state = decide(record.state, now=T0, counts=TrafficCounts())  # the bake starts
    state = decide(state, now=T0 + 2, counts=TrafficCounts(requests=50))
    state = decide(state, now=T0 + 4, counts=TrafficCounts(requests=90))
    repo.apply_rollout("default", "prod", state)
    assert state.phase is RolloutPhase.COMPLETED
    assert shares(repo) == [("v3", 100)] and repo.running_rollouts() == []
    assert kinds(repo)[-1] == "rollout_completed"


def test_a_rollout_names_its_bad_field_and_an_alias_without_one_says_so(
    repo: Repository,
) -> None:
    rollouts = RolloutService(repo)
    with pytest.raises(InvalidSpec) as caught:
        rollouts.start("default", "prod", {**PLAN, "to_node": "v4"}, actor="admin")
    assert caught.value.field == "to_node"
    with pytest.raises(InvalidSpec) as caught:
        rollouts.start("default", "prod", {**PLAN, "bake_s": -1}, actor="admin")
    assert caught.value.field == "bake_s"
    with pytest.raises(RolloutNotFound, match="has had no rollout"):
        rollouts.get("default", "prod")


def test_deleting_an_alias_forgets_its_rollout(repo: Repository) -> None:
    RolloutService(repo).start("default", "prod", PLAN, actor="admin")
    AliasService(repo).delete("default", "prod", actor="admin")
    assert repo.get_rollout("default", "prod") is None


def test_a_decision_on_an_older_view_does_not_overwrite_an_abort(repo: Repository) -> None:
    rollouts = RolloutService(repo, clock=lambda: T0)
    rollouts.start("default", "prod", PLAN, actor="admin")
    (seen,) = repo.running_rollouts()  # a tick reads the rollout ...
    rollouts.abort("default", "prod", actor="admin")  # ... the API aborts it meanwhile
    later = decide(seen.state, now=T0, counts=TrafficCounts())
    assert repo.replace_rollout("default", "prod", seen.state, later) is None
    record = repo.get_rollout("default", "prod")
    assert record is not None and record.state.phase is RolloutPhase.ROLLED_BACK
    assert shares(repo) == [("v1", 90), ("v2", 10)]


def test_the_shares_of_an_alias_rolling_out_are_the_rollouts(repo: Repository) -> None:
    RolloutService(repo).start("default", "prod", PLAN, actor="admin")
    aliases = AliasService(repo)
    with pytest.raises(RolloutRunning, match="--abort"):
        aliases.update("default", "prod", {"nodes": [{"node": "v1"}]}, actor="admin")
    updated = aliases.update("default", "prod", {"metadata": {"team": "ml"}}, actor="admin")
    assert updated.spec.metadata == {"team": "ml"}  # what is not a share may change
