"""The SDK reads pier's JSON errors back into the PierError classes (fake HTTP responses)."""

from __future__ import annotations

import httpx
import pytest

import pier
from pier.domain.errors import ERRORS_BY_TYPE
from tests.cli.conftest import FakePier, body_of, error_response, node_json

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


@pytest.mark.parametrize(
    "cls", sorted(ERRORS_BY_TYPE.values(), key=lambda c: c.error_type), ids=lambda c: c.__name__
)
def test_sdk_raises_the_class_of_each_error_type_fake_server(
    fake_pier: FakePier, cls: type[pier.PierError]
) -> None:
    """Every class the server can send, including those a test server cannot be made to
    answer (a lost Docker engine, a pier bug)."""
    answer = error_response(cls.http_status, cls.code, "the message", type=cls.error_type)
    fake_pier.on("GET", NODE, answer)
    with fake_pier.client() as client, pytest.raises(pier.PierError) as caught:
        client.get_node("iris")
    assert type(caught.value) is cls
    assert caught.value.message == "the message"


def test_sdk_keeps_the_category_when_the_type_is_unknown_or_of_another_fake_server(
    fake_pier: FakePier,
) -> None:
    fake_pier.on("GET", NODE, error_response(404, "not_found", "gone", type="pod_not_found"))
    fake_pier.on("DELETE", NODE, error_response(409, "conflict", "busy", type="node_not_found"))
    with fake_pier.client() as client:
        with pytest.raises(pier.NotFound) as unknown:
            client.get_node("iris")
        with pytest.raises(pier.Conflict) as mismatched:
            client.delete_node("iris")
    assert type(unknown.value) is pier.NotFound and type(mismatched.value) is pier.Conflict


def test_store_unavailable_keeps_its_reason_fake_server(fake_pier: FakePier) -> None:
    message = "the store is unavailable (database is locked); try again shortly"
    answer = error_response(503, "store_unavailable", message, type="store_unavailable")
    fake_pier.on("GET", NODE, answer)
    with fake_pier.client() as client, pytest.raises(pier.StoreUnavailable) as caught:
        client.get_node("iris")
    assert caught.value.reason == message


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
    created = node_json(project="team-a", status="Created")
    fake_pier.on("POST", "/api/v1/projects/team-a/nodes", created)
    with fake_pier.client(token="s3cret", project="team-a") as client:
        node = client.create_node("iris", spec={"model": "iris"}, min_instances=2)
    assert node.status == "Created" and node.project == "team-a"
    (request,) = fake_pier.requests
    assert request.headers["authorization"] == "Bearer s3cret"
    assert body_of(request) == {"name": "iris", "spec": {"model": "iris", "min_instances": 2}}
