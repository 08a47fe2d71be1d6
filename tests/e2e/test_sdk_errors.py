"""Each error a real `pier up` answers reaches SDK users as its own PierError class: the
server's ``type`` picks the class (NodeNotFound, ModelInUse...), ``code`` its category."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import pier
from pier.client import error_from_response
from tests.conftest import IrisModel, PierProcess, running_pier

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
"""Image nodes are refused (no engine): nothing here pulls an image."""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, iris_onnx: IrisModel) -> Iterator[PierProcess]:
    """A pier with model iris and node iris (min 0: no instance runs)."""
    with running_pier(tmp_path_factory.mktemp("sdk-errors") / "data", env=NO_DOCKER) as up:
        with pier.Client(up.url, up.token) as client:
            client.push_model(iris_onnx.path, "iris")
            client.create_node("iris", model="iris", min_instances=0)
        yield up


@pytest.fixture
def client(served: PierProcess) -> Iterator[pier.Client]:
    with pier.Client(served.url, served.token) as sdk:
        yield sdk


def test_an_unknown_node_raises_node_not_found(client: pier.Client) -> None:
    with pytest.raises(pier.NodeNotFound, match=r"node 'irs' not found.*did you mean 'iris'"):
        client.get_node("irs")


def test_an_unknown_model_raises_model_not_found(client: pier.Client) -> None:
    with pytest.raises(pier.ModelNotFound, match="model 'nope'"):
        client.create_node("other", model="nope")
    with pytest.raises(pier.ModelNotFound):
        client.get_model("nope")


def test_an_unknown_project_raises_project_not_found(served: PierProcess) -> None:
    with (
        pier.Client(served.url, served.token, project="nope") as client,
        pytest.raises(pier.ProjectNotFound, match="project 'nope' not found"),
    ):
        client.list_nodes()


def test_an_unknown_instance_raises_instance_not_found(client: pier.Client) -> None:
    with pytest.raises(pier.InstanceNotFound, match="instance 'ghost'"):
        list(client.logs("iris", instance="ghost"))


def test_a_taken_name_raises_name_taken(client: pier.Client) -> None:
    with pytest.raises(pier.NameTaken, match="node 'iris' already exists"):
        client.create_node("iris", model="iris", min_instances=0)


def test_deleting_a_model_in_use_raises_model_in_use(client: pier.Client) -> None:
    with pytest.raises(pier.ModelInUse, match="in use by node 'iris'") as caught:
        client.delete_model("iris")
    assert caught.value.code == "conflict" and isinstance(caught.value, pier.Conflict)


def test_a_bad_value_raises_invalid_spec_naming_the_field(client: pier.Client) -> None:
    with pytest.raises(pier.InvalidSpec) as caught:
        client.create_node("other", model="iris", min_instances=3, max_instances=1)
    assert type(caught.value) is pier.InvalidSpec and caught.value.field == "max_instances"
    with pytest.raises(pier.InvalidSpec) as patched:
        client.update_node("iris", health={"interval_s": -1})
    assert patched.value.field == "health.interval_s"


def test_ids_beyond_the_stores_range_are_invalid_not_a_crash(client: pier.Client) -> None:
    with pytest.raises(pier.InvalidSpec) as version:
        client.create_node("other", model="iris", model_version=2**64)
    with pytest.raises(pier.InvalidSpec) as after:
        client.events("iris", after=2**64)
    assert (version.value.field, after.value.field) == ("model_version", "after")


def test_an_unknown_configuration_raises_configuration_not_found(client: pier.Client) -> None:
    with pytest.raises(pier.ConfigurationNotFound) as caught:
        client.update_node("iris", configuration="x9.9")
    assert caught.value.field == "configuration" and "c1.2" in caught.value.message


def test_a_wrong_token_raises_unauthorized(served: PierProcess) -> None:
    with pier.Client(served.url, "wrong") as client, pytest.raises(pier.Unauthorized):
        client.list_nodes()


@pytest.mark.parametrize(
    ("method", "path", "body", "cls"),
    [
        ("POST", "/api/v1/projects/default/nodes", b'{"name": "x",', pier.BadRequest),
        ("PUT", "/api/v1/projects/default/nodes/iris", b"", pier.MethodNotAllowed),
        ("GET", "/api/v1/nowhere", b"", pier.NotFound),
    ],
    ids=["not-json", "method", "path"],
)
def test_framework_answers_map_to_their_classes(
    served: PierProcess, method: str, path: str, body: bytes, cls: type[pier.PierError]
) -> None:
    """What the SDK never sends on its own, sent by hand and read back by the SDK."""
    with served.api() as api:
        response = api.request(
            method, path, content=body, headers={"Content-Type": "application/json"}
        )
    error = error_from_response(response)
    assert type(error) is cls, response.text
    if cls is pier.MethodNotAllowed:
        assert response.headers["allow"] == "DELETE, GET, PATCH"


def test_the_error_body_has_the_category_and_the_type(served: PierProcess) -> None:
    with served.api() as api:
        body = api.get("/api/v1/projects/default/nodes/irs").json()
    assert body["error"]["code"] == "not_found" and body["error"]["type"] == "node_not_found"
