from typing import Any

import pytest

from pier.domain.errors import InvalidSpec
from pier.domain.names import validate_model_name, validate_name
from pier.domain.specs import parse_node_spec


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"model": "iris", "min_instances": 3, "max_instances": 2}, "max_instances"),
        ({"model": "iris", "configuration": "huge"}, "configuration"),
        ({"model": "iris", "colour": "red"}, "colour"),
        ({"model": "iris", "health": {"interval_s": 0}}, "health.interval_s"),
        ({"model": "iris", "min_instances": -1}, "min_instances"),
        ({"image": "example:1"}, "port"),
        ({}, "model"),
        ({"model": "iris", "port": 80}, "port"),
        ({"model": "iris", "image": "example:1", "port": 80}, "port"),
        ({"model": "iris", "command": ["python3"]}, "command"),
        ({"model": "iris", "image": "example:1", "health": {"port": 9000}}, "health.port"),
        ({"model": "iris", "telemetry": {"port": 9000}}, "telemetry.port"),
        ({"model": "Iris!"}, "model"),
        ({"model": "iris", "registry_secret": "Creds_1"}, "registry_secret"),
        ({"model": "iris", "env": {"1BAD": "x"}}, "env"),
        ({"model": "iris", "max_batch_size": 0}, "max_batch_size"),
        ({"model": "iris", "max_batch_size": 8, "batch_delay_ms": -1}, "batch_delay_ms"),
        ({"model": "iris", "batch_delay_ms": 2}, "batch_delay_ms"),
        ({"image": "example:1", "port": 80, "max_batch_size": 8}, "max_batch_size"),
    ],
)
def test_bad_spec_names_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_node_spec(spec)
    assert caught.value.field == field
    assert caught.value.http_status == 422


def test_secret_env_is_never_shown() -> None:
    spec = parse_node_spec({"model": "iris", "secret_env": {"API_KEY": "hunter2"}})
    assert "hunter2" not in str(spec.redacted())
    assert spec.redacted()["secret_env"] == {"API_KEY": "***"}


@pytest.mark.parametrize("name", ["Iris", "-a", "a-", "a_b", "", "x" * 64])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        validate_name(name, field="name")
    assert caught.value.field == "name"


@pytest.mark.parametrize("name", ["simple", "simple_string", "Iris", "resnet-50.v2", "_x", "9"])
def test_model_names_follow_tritons_rules(name: str) -> None:
    assert validate_model_name(name, field="name") == name
    assert parse_node_spec({"model": name}).model == name


@pytest.mark.parametrize("name", ["", ".hidden", "-a", "a/b", "a b", "a:1", "a\n", "é", "x" * 64])
def test_bad_model_names_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        validate_model_name(name, field="--name")
    assert caught.value.field == "--name" and "model name" in caught.value.message
    with pytest.raises(InvalidSpec) as caught:
        parse_node_spec({"model": name})
    assert caught.value.field == "model"


def test_max_defaults_to_min() -> None:
    assert parse_node_spec({"model": "iris", "min_instances": 3}).effective_max == 3


def test_a_model_in_an_image_is_checked_like_a_model_node() -> None:
    spec = parse_node_spec({"model": "iris", "image": "example:1"})
    assert spec.model_in_image
    assert spec.health.protocol == "http"
    assert spec.health.path == "/v2/health/ready"
    assert spec.port is None


def test_an_image_node_may_check_health_and_serve_metrics_on_other_ports() -> None:
    spec = parse_node_spec(
        {
            "image": "example:1",
            "port": 8080,
            "health": {"path": "/healthz", "port": 8081},
            "telemetry": {"path": "/metrics", "port": 9100},
        }
    )
    assert spec.extra_ports == (8081, 9100)
    same = parse_node_spec({"image": "example:1", "port": 8080, "health": {"port": 8080}})
    assert same.extra_ports == ()
