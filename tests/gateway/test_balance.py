"""Instance and node choice, as pure functions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from pier.domain.routes import RouteInstance
from pier.gateway.balance import (
    HashRing,
    SessionPins,
    WeightedChoice,
    pick_instance,
    session_hash,
)
from pier.gateway.pool import Upstream


@dataclass(eq=False)
class Instance:
    name: str
    in_flight: int = 0
    down_until: float = 0.0


def test_two_choices_prefer_the_less_loaded_instance() -> None:
    busy, idle = Instance("busy", in_flight=5), Instance("idle")
    assert {pick_instance([busy, idle], now=0.0).name for _ in range(50)} == {"idle"}


def test_the_most_loaded_of_many_is_never_picked() -> None:
    instances = [Instance(str(i), in_flight=i) for i in range(5)]
    picks = Counter(pick_instance(instances, now=0.0).name for _ in range(2000))
    assert "4" not in picks
    assert picks["0"] > picks["3"]


def test_ties_spread_at_random() -> None:
    a, b = Instance("a"), Instance("b")
    picks = Counter(pick_instance([a, b], now=0.0).name for _ in range(400))
    assert min(picks.values()) > 100


def test_an_instance_that_refused_loses_until_its_penalty_ends() -> None:
    refused, other = upstream("refused"), upstream("other")
    for _ in range(3):
        other.acquire()
    refused.mark_down(now=10.0)
    assert {pick_instance([refused, other], now=10.5).instance_id for _ in range(50)} == {"other"}
    assert pick_instance([refused, other], now=11.5).instance_id == "refused"


def upstream(name: str) -> Upstream:
    return Upstream(RouteInstance(instance_id=name, endpoint="http://127.0.0.1:9"))


def test_weighted_choice_follows_the_weights() -> None:
    choice = WeightedChoice(["blue", "green"], [90, 10])
    picks = Counter(choice.pick() for _ in range(5000))
    assert 0.85 < picks["blue"] / 5000 < 0.95


@pytest.mark.parametrize("scale", [1, 1000])  # a table of shares, and a search past TABLE_MAX
def test_weighted_choice_gives_each_item_exactly_its_share_of_0_to_1(scale: int) -> None:
    choice = WeightedChoice(["a", "b", "c"], [20 * scale, 30 * scale, 50 * scale])
    assert [choice.pick_at(i / 100) for i in range(100)] == ["a"] * 20 + ["b"] * 30 + ["c"] * 50
    assert choice.pick_at(float(2**64 - 1) / 2**64) == "c"  # a session hash rounding to 1.0
    assert choice.pick_at(1.0 - 2**-53) == "c"


def test_weighted_choice_needs_positive_weights() -> None:
    with pytest.raises(ValueError, match="positive weights"):
        WeightedChoice(["a"], [0])


@dataclass(frozen=True)
class Keyed:
    instance_id: str


def _owners(ring: HashRing[Keyed], sessions: list[int]) -> dict[int, str]:
    return {s: ring.pick(s).instance_id for s in sessions}  # type: ignore[union-attr]


def test_adding_an_instance_moves_only_the_sessions_it_takes_over() -> None:
    sessions = [session_hash(b"user-%d" % i) for i in range(2000)]
    four = [Keyed(f"i{n}") for n in range(4)]
    before = _owners(HashRing(four), sessions)
    after = _owners(HashRing([*four, Keyed("i4")]), sessions)
    moved = [s for s in sessions if before[s] != after[s]]
    assert {after[s] for s in moved} == {"i4"}
    assert 0.1 < len(moved) / len(sessions) < 0.35  # about a fifth
    assert min(Counter(before.values()).values()) > 2000 / 4 * 0.6  # spread evenly enough


def test_removing_an_instance_moves_only_its_sessions() -> None:
    sessions = [session_hash(b"user-%d" % i) for i in range(1000)]
    four = [Keyed(f"i{n}") for n in range(4)]
    before = _owners(HashRing(four), sessions)
    after = _owners(HashRing(four[:3]), sessions)
    assert {s for s in sessions if before[s] != after[s]} == {
        s for s in sessions if before[s] == "i3"
    }


def test_the_same_session_picks_the_same_node_by_weight() -> None:
    choice = WeightedChoice(["a", "b"], [80, 20])
    assert {choice.pick_at(0.5) for _ in range(10)} == {"a"}
    assert choice.pick_at(0.85) == "b"


def test_session_pins_tell_a_move_and_forget_the_oldest() -> None:
    pins = SessionPins(max_sessions=2)
    assert not pins.pin(1, "a")
    assert not pins.pin(1, "a")
    assert pins.pin(1, "b")
    assert not pins.pin(2, "a")
    assert not pins.pin(3, "a")  # forgets session 1, unseen longest
    assert not pins.pin(1, "c")
