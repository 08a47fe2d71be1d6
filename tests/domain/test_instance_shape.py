"""Which spec changes replace a node's instances (a rolling update) and which apply to the
running ones: scaling a node must not restart it."""

from __future__ import annotations

from typing import Any

import pytest

from pier.domain.specs import parse_node_spec

WEB: dict[str, Any] = {
    "image": "127.0.0.1:5000/echo:1",
    "port": 8080,
    "health": {"path": "/healthz"},
    "env": {"GREETING": "hi"},
}


@pytest.mark.parametrize(
    "change",
    [
        {"min_instances": 3, "max_instances": 5},
        {"target_in_flight": 2.0},
        {"maintenance_limit": 2},
        {"timeout_s": 5.0, "idle_timeout_s": 2.0},
        {"access": "public"},
        {"registry_secret": "regcred"},
        {"telemetry": {"path": "/metrics"}},
    ],
)
def test_changes_read_by_pier_alone_keep_the_instances(change: dict[str, Any]) -> None:
    before, after = parse_node_spec(WEB), parse_node_spec({**WEB, **change})
    assert before != after
    assert before.instance_shape() == after.instance_shape()


@pytest.mark.parametrize(
    "change",
    [
        {"image": "127.0.0.1:5000/echo:2"},
        {"port": 9000},
        {"env": {"GREETING": "v2"}},
        {"secret_env": {"TOKEN": "x"}},
        {"command": ["/bin/httpd"]},
        {"args": ["-v"]},
        {"configuration": "c1.4"},
        {"health": {"path": "/ready"}},
        {"health": {"path": "/healthz", "interval_s": 0.5}},
        {"telemetry": {"path": "/metrics", "port": 9090}},
    ],
)
def test_changes_to_what_instances_run_replace_them(change: dict[str, Any]) -> None:
    before, after = parse_node_spec(WEB), parse_node_spec({**WEB, **change})
    assert before.instance_shape() != after.instance_shape()


def test_a_new_model_version_replaces_the_instances() -> None:
    v1 = parse_node_spec({"model": "iris", "model_version": 1})
    v2 = parse_node_spec({"model": "iris", "model_version": 2})
    assert v1.instance_shape() != v2.instance_shape()


def test_the_generation_moves_only_when_the_instances_must_be_replaced() -> None:
    before = parse_node_spec(WEB)
    assert parse_node_spec({**WEB, "min_instances": 3}).generation_after(before, 4) == 4
    assert parse_node_spec({**WEB, "env": {"GREETING": "ho"}}).generation_after(before, 4) == 5
