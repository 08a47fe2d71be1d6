"""Instance and node choice, as pure functions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from pier.gateway.balance import WeightedChoice, mark_down, pick_instance


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
    refused, other = Instance("refused"), Instance("other", in_flight=3)
    mark_down(refused, now=10.0)
    assert {pick_instance([refused, other], now=10.5).name for _ in range(50)} == {"other"}
    assert pick_instance([refused, other], now=11.5).name == "refused"


def test_weighted_choice_follows_the_weights() -> None:
    choice = WeightedChoice(["blue", "green"], [90, 10])
    picks = Counter(choice.pick() for _ in range(5000))
    assert 0.85 < picks["blue"] / 5000 < 0.95


def test_weighted_choice_needs_positive_weights() -> None:
    with pytest.raises(ValueError, match="positive weights"):
        WeightedChoice(["a"], [0])
