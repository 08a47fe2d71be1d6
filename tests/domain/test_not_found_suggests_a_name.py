"""A name that is not found is compared with the names that exist: a typo gets a suggestion."""

from __future__ import annotations

from pier.domain.errors import ModelNotFound, NodeNotFound, NotFound


def test_a_typo_in_a_node_name_suggests_the_closest_one() -> None:
    error = NodeNotFound("default", "irs", known=["web", "iris", "iris-auto"])
    assert error.message == "node 'irs' not found in project 'default'; did you mean 'iris'?"
    assert isinstance(error, NotFound) and error.code == "not_found"


def test_no_suggestion_when_nothing_is_close() -> None:
    assert NodeNotFound("default", "zzz", known=["iris"]).message == (
        "node 'zzz' not found in project 'default'"
    )
    assert ModelNotFound("default", "iris", 7, known=["iris"]).message == (
        "model 'iris' version 7 not found in project 'default'"
    )


def test_a_typo_in_a_model_name_suggests_the_closest_one() -> None:
    assert ModelNotFound("default", "irsi", known=["iris", "bert"]).message == (
        "model 'irsi' not found in project 'default'; did you mean 'iris'?"
    )
