"""A real `pier up` refuses values that would reach a process, a request line or the
engine unchecked: 422 invalid_spec naming the field, and nothing is stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import PierProcess, free_port

IMAGE = {"image": "127.0.0.1:5000/echo:1", "port": 8080}


@pytest.fixture(scope="module")
def pier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PierProcess]:
    """One `pier up` for the module: every request here is refused, nothing is stored."""
    process = PierProcess(tmp_path_factory.mktemp("specs") / "data", free_port(), free_port())
    process.start()
    yield process
    process.stop()


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"image": "../containers/abc", "port": 8080}, "image"),
        ({"image": "http://x", "port": 8080}, "image"),
        ({**IMAGE, "health": {"path": "/h\r\nX-Evil: 1"}}, "health.path"),
        ({**IMAGE, "telemetry": {"path": "/metrics now"}}, "telemetry.path"),
        ({**IMAGE, "env": {"A": "x\u0000y"}}, "env.A"),
        ({**IMAGE, "command": ["sh", "-c\u0000"]}, "command.1"),
        ({**IMAGE, "registry_secret": "../regcred"}, "registry_secret"),
    ],
)
def test_bad_values_are_422_naming_the_field(
    pier: PierProcess, spec: dict[str, Any], field: str
) -> None:
    with pier.api() as api:
        created = api.post("/api/v1/projects/default/nodes", json={"name": "web", "spec": spec})
        nodes = api.get("/api/v1/projects/default/nodes").json()["nodes"]
    assert created.status_code == 422, created.text
    error = created.json()["error"]
    assert error["code"] == "invalid_spec"
    assert error["field"] == field
    assert nodes == []


def test_a_number_that_is_not_finite_is_422(pier: PierProcess) -> None:
    body = json.dumps({"name": "web", "spec": {"model": "iris", "timeout_s": float("inf")}})
    assert "Infinity" in body
    with pier.api() as api:
        created = api.post(
            "/api/v1/projects/default/nodes",
            content=body,
            headers={"Content-Type": "application/json"},
        )
    assert created.status_code == 422, created.text
    assert created.json()["error"]["field"] == "timeout_s"


def test_a_secret_value_with_nul_is_422(pier: PierProcess) -> None:
    with pier.api() as api:
        put = api.put(
            "/api/v1/projects/default/secrets/regcred",
            json={"value": {"username": "me", "password": "pw\u0000"}},
        )
        listed = api.get("/api/v1/projects/default/secrets").json()["secrets"]
    assert put.status_code == 422, put.text
    assert put.json()["error"]["field"] == "value.password"
    assert "pw" not in put.text
    assert listed == []
