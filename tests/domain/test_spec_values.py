"""Every string that reaches a process, a request line, the engine or a registry is
checked when the spec is parsed, and the error names the field."""

from typing import Any

import pytest

from pier.domain.errors import InvalidSpec
from pier.domain.routes import RouteInstance, is_routable
from pier.domain.spec_values import (
    MAX_ARG_CHARS,
    MAX_ARGV_ITEMS,
    MAX_ENV_BYTES,
    MAX_ENV_ENTRIES,
    MAX_PATH_CHARS,
    check_secret_value,
    image_reference,
)
from pier.domain.specs import parse_node_spec

IMAGE = {"image": "127.0.0.1:5000/echo:1", "port": 8080}
MODEL = {"model": "iris"}
DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "ref",
    [
        "nginx",
        "nginx:1.27",
        "library/nginx:latest",
        "docker.io/library/nginx:1.27-alpine",
        "127.0.0.1:5000/echo:1",
        "localhost:5000/team/app_v2:1.2.3",
        "registry.example.com/a/b/c",
        "[::1]:5000/app:1",
        f"app@{DIGEST}",
        f"127.0.0.1:5000/echo:1@{DIGEST}",
        DIGEST,
        "my-app__x.y",
    ],
)
def test_image_references_of_the_docker_grammar_are_taken(ref: str) -> None:
    assert image_reference(ref) == ref
    assert parse_node_spec({"image": ref, "port": 8080}).image == ref


@pytest.mark.parametrize(
    "ref",
    [
        "../containers/abc",
        "http://x",
        "http://registry/app:1",
        "Nginx",
        "team/App:1",
        "app:",
        "app:bad tag",
        "app:" + "t" * 129,
        "app@sha256:xyz",
        "app@" + "a" * 64,
        "",
        " nginx",
        "nginx\n",
        "app:1\x00",
        "/app",
        "app/",
        "app//x",
        "-app",
        "a" * 256,
    ],
)
def test_strings_that_are_not_image_references_are_refused(ref: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_node_spec({"image": ref, "port": 8080})
    assert caught.value.field == "image"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        # health and metrics paths go into a request line
        ({**IMAGE, "health": {"path": "healthz"}}, "health.path"),
        ({**IMAGE, "health": {"path": "/health z"}}, "health.path"),
        ({**IMAGE, "health": {"path": "/h\r\nHost: evil"}}, "health.path"),
        ({**IMAGE, "health": {"path": "/h\x00"}}, "health.path"),
        ({**IMAGE, "health": {"path": "/h#frag"}}, "health.path"),
        ({**IMAGE, "health": {"path": "/caf\u00e9"}}, "health.path"),
        ({**IMAGE, "health": {"path": "/%zz"}}, "health.path"),
        ({**IMAGE, "health": {"path": "/" + "a" * MAX_PATH_CHARS}}, "health.path"),
        ({**IMAGE, "health": {"protocol": "tcp", "path": "x y"}}, "health.path"),
        ({**IMAGE, "health": {"protocol": "grpc", "path": "svc name"}}, "health.path"),
        ({**IMAGE, "health": {"protocol": "grpc", "path": "svc\n"}}, "health.path"),
        ({**IMAGE, "telemetry": {"path": "metrics"}}, "telemetry.path"),
        ({**IMAGE, "telemetry": {"path": "/metrics\r\n"}}, "telemetry.path"),
        ({**IMAGE, "telemetry": {"path": "/m" * MAX_PATH_CHARS}}, "telemetry.path"),
        # the environment reaches a process
        ({**IMAGE, "env": {"A=B": "x"}}, "env"),
        ({**IMAGE, "env": {"A\x00": "x"}}, "env"),
        ({**IMAGE, "env": {"": "x"}}, "env"),
        ({**IMAGE, "env": {"A": "x\x00y"}}, "env.A"),
        ({**IMAGE, "env": {"A": "\ud800"}}, "env.A"),
        ({**IMAGE, "secret_env": {"1KEY": "x"}}, "secret_env"),
        ({**IMAGE, "secret_env": {"KEY": "x\x00"}}, "secret_env.KEY"),
        ({**IMAGE, "env": {f"V{i}": "" for i in range(MAX_ENV_ENTRIES + 1)}}, "env"),
        (
            {
                **IMAGE,
                "env": {f"V{i}": "" for i in range(MAX_ENV_ENTRIES)},
                "secret_env": {"S": "x"},
            },
            "secret_env",
        ),
        ({**IMAGE, "env": {"BIG": "x" * MAX_ENV_BYTES}}, "env"),
        (
            {
                **IMAGE,
                "env": {"A": "x" * (MAX_ENV_BYTES // 2)},
                "secret_env": {"B": "x" * (MAX_ENV_BYTES // 2)},
            },
            "secret_env",
        ),
        # command and args become argv
        ({**IMAGE, "command": ["sh", "-c\x00"]}, "command.1"),
        ({**IMAGE, "args": ["ok", "x" * (MAX_ARG_CHARS + 1)]}, "args.1"),
        ({**IMAGE, "args": ["x"] * (MAX_ARGV_ITEMS + 1)}, "args"),
        ({**IMAGE, "command": ["\udfff"]}, "command.0"),
        ({**IMAGE, "command": "sh -c x"}, "command"),
        # ports
        ({**IMAGE, "port": 0}, "port"),
        ({**IMAGE, "port": 65536}, "port"),
        ({**IMAGE, "health": {"port": -1}}, "health.port"),
        ({**IMAGE, "telemetry": {"port": 70000}}, "telemetry.port"),
        # numbers are finite and in range
        ({**MODEL, "timeout_s": float("nan")}, "timeout_s"),
        ({**MODEL, "timeout_s": float("inf")}, "timeout_s"),
        ({**MODEL, "timeout_s": 0}, "timeout_s"),
        ({**MODEL, "timeout_s": 1e9}, "timeout_s"),
        ({**MODEL, "idle_timeout_s": float("nan")}, "idle_timeout_s"),
        ({**MODEL, "target_in_flight": float("inf")}, "target_in_flight"),
        ({**MODEL, "target_in_flight": float("nan")}, "target_in_flight"),
        ({**MODEL, "target_in_flight": 1e12}, "target_in_flight"),
        ({**MODEL, "health": {"interval_s": float("nan")}}, "health.interval_s"),
        ({**MODEL, "health": {"timeout_s": float("inf")}}, "health.timeout_s"),
        ({**MODEL, "health": {"grace_s": float("-inf")}}, "health.grace_s"),
        ({**MODEL, "health": {"start_timeout_s": float("nan")}}, "health.start_timeout_s"),
        ({**MODEL, "health": {"healthy_threshold": 0}}, "health.healthy_threshold"),
        ({**MODEL, "health": {"unhealthy_threshold": 0}}, "health.unhealthy_threshold"),
        ({**MODEL, "maintenance_limit": 0}, "maintenance_limit"),
        ({**MODEL, "maintenance_limit": 10**6}, "maintenance_limit"),
        ({**MODEL, "model_version": 2**63}, "model_version"),
        ({**MODEL, "max_instances": 10**6}, "max_instances"),
        # names
        ({**IMAGE, "registry_secret": "Bad Name"}, "registry_secret"),
        ({**IMAGE, "registry_secret": "../x"}, "registry_secret"),
        ({**IMAGE, "registry_secret": ""}, "registry_secret"),
        ({"model": "../iris"}, "model"),
    ],
)
def test_a_bad_value_is_refused_naming_its_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_node_spec(spec)
    assert caught.value.field == field
    assert caught.value.http_status == 422


@pytest.mark.parametrize(
    "spec",
    [
        {**IMAGE, "health": {"path": "/healthz?full=1&x=%20"}},
        {**IMAGE, "health": {"path": "/"}},
        {**IMAGE, "health": {"protocol": "grpc", "path": "grpc.health.v1.Health"}},
        {**IMAGE, "health": {"protocol": "grpc", "path": ""}},
        {**IMAGE, "telemetry": {"path": "/metrics"}},
        {**IMAGE, "env": {"_A1": "multi\nline", "B": ""}, "secret_env": {"TOKEN": "s3cr=t"}},
        {**IMAGE, "command": ["sh", "-c", "echo 'hi there'"], "args": [""]},
        {**IMAGE, "registry_secret": "regcred"},
        {**MODEL, "timeout_s": 3600, "target_in_flight": 0.5},
    ],
)
def test_good_values_are_kept(spec: dict[str, Any]) -> None:
    parse_node_spec(spec)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({}, "value"),
        ({"user name": "x"}, "value"),
        ({"k" * 129: "x"}, "value"),
        ({"password": "a\x00b"}, "value.password"),
        ({"password": "\ud800"}, "value.password"),
        ({f"k{i}": "" for i in range(65)}, "value"),
        ({"password": "x" * (64 * 1024)}, "value"),
    ],
)
def test_bad_secret_values_are_refused(value: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        check_secret_value(value)
    assert caught.value.field == field


def test_a_good_secret_is_taken() -> None:
    check_secret_value({"username": "me", "password": "p@ss w0rd\n", "registry": "127.0.0.1"})


@pytest.mark.parametrize(
    ("instance_id", "endpoint", "routable"),
    [
        ("web-1a2b3c", "http://127.0.0.1:41235", True),
        ("web-1", "http://[::1]:8080/prefix", True),
        ("web\r\nx: y", "http://127.0.0.1:1", False),
        ("web 1", "http://127.0.0.1:1", False),
        ("", "http://127.0.0.1:1", False),
        ("web-1", "http://127.0.0.1:1\r\nHost: evil", False),
        ("web-1", "http://user:pw@127.0.0.1:1", False),
        ("web-1", "https://127.0.0.1:1", False),
        ("web-1", "http://127.0.0.1:1/a b", False),
    ],
)
def test_what_the_gateway_puts_on_the_wire_is_checked(
    instance_id: str, endpoint: str, routable: bool
) -> None:
    assert is_routable(instance_id, endpoint) is routable
    if routable:
        RouteInstance(instance_id=instance_id, endpoint=endpoint)
    else:
        with pytest.raises(ValueError):
            RouteInstance(instance_id=instance_id, endpoint=endpoint)
