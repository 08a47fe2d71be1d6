"""JSON Merge Patch (RFC 7396) as pier applies it to node specs: the RFC's own examples,
and the patch model that documents it in /openapi.json."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pier.domain.merge_patch import merge_patch
from pier.domain.requests import NodeUpdate


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_the_rfc_7396_examples(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_a_spec_patch_keeps_its_nulls_and_checks_its_values() -> None:
    update = NodeUpdate.model_validate(
        {"spec": {"env": {"A": None, "B": "2"}, "max_instances": None, "health": {"path": "/h"}}}
    )
    assert update.changes() == {
        "env": {"A": None, "B": "2"},
        "max_instances": None,
        "health": {"path": "/h"},
    }
    with pytest.raises(ValidationError):
        NodeUpdate.model_validate({"spec": {"min_instances": -1}})
    with pytest.raises(ValidationError):
        NodeUpdate.model_validate({"spec": {"replicas": 2}})
