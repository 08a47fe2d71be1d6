"""The SDK reads pier's JSON errors back into the PierError classes (fake HTTP responses)."""

from __future__ import annotations

import httpx
import pytest

import pier
from tests.cli.conftest import FakePier, body_of, error_response

NODE = "/api/v1/projects/default/nodes/iris"


def test_sdk_maps_invalid_spec_fake_server(fake_pier: FakePier) -> None:
    message = "max_instances: max_instances (1) is below min_instances (3)"
    fake_pier.on(
        "POST",
        "/api/v1/projects/default/nodes",
        error_response(422, "invalid_spec", message, field="max_instances"),
    )
    with fake_pier.client() as client, pytest.raises(pier.InvalidSpec) as caught:
        client.create_node("iris", model="iris", min_instances=3, max_instances=1)
    assert caught.value.field == "max_instances"
    assert caught.value.message == message
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (401, "unauthorized", pier.Unauthorized),
        (403, "forbidden", pier.Forbidden),
        (404, "not_found", pier.NotFound),
        (409, "conflict", pier.Conflict),
        (413, "body_too_large", pier.BodyTooLarge),
        (503, "runtime_unavailable", pier.RuntimeUnavailable),
        (500, "internal", pier.PierError),
    ],
)
def test_sdk_maps_each_error_code_fake_server(
    fake_pier: FakePier, status: int, code: str, cls: type[pier.PierError]
) -> None:
    fake_pier.on("GET", NODE, error_response(status, code, f"the {code} message"))
    with fake_pier.client() as client, pytest.raises(pier.PierError) as caught:
        client.get_node("iris")
    assert type(caught.value) is cls
    assert caught.value.message == f"the {code} message"


def test_sdk_falls_back_to_the_status_for_unknown_codes_fake_server(fake_pier: FakePier) -> None:
    fake_pier.on("GET", NODE, error_response(404, "gone_fishing", "no such node"))
    with fake_pier.client() as client, pytest.raises(pier.NotFound, match="no such node"):
        client.get_node("iris")


def test_sdk_reports_a_non_json_error_with_its_status_fake_server(fake_pier: FakePier) -> None:
    fake_pier.on("GET", NODE, httpx.Response(502, text="Bad Gateway from a proxy"))
    with fake_pier.client() as client, pytest.raises(pier.PierError) as caught:
        client.get_node("iris")
    assert "502" in caught.value.message and "Bad Gateway from a proxy" in caught.value.message


def test_sdk_maps_a_framework_validation_error_fake_server(fake_pier: FakePier) -> None:
    detail = [{"loc": ["body", "spec", "min_instances"], "msg": "must be >= 0"}]
    fake_pier.on("PATCH", NODE, httpx.Response(422, json={"detail": detail}))
    with fake_pier.client() as client, pytest.raises(pier.InvalidSpec) as caught:
        client.update_node("iris", min_instances=-1)
    assert caught.value.field == "spec.min_instances"


def test_sdk_sends_the_bearer_token_and_the_node_shape_fake_server(fake_pier: FakePier) -> None:
    fake_pier.on("POST", "/api/v1/projects/team-a/nodes", {"name": "iris", "status": "Created"})
    with fake_pier.client(token="s3cret", project="team-a") as client:
        node = client.create_node("iris", spec={"model": "iris"}, min_instances=2)
    assert node["status"] == "Created"
    (request,) = fake_pier.requests
    assert request.headers["authorization"] == "Bearer s3cret"
    assert body_of(request) == {"name": "iris", "spec": {"model": "iris", "min_instances": 2}}
