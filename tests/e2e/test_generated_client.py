"""A client generated from /openapi.json by openapi-python-client (offline, at test time)
pushes a model, creates, reads and deletes a node against a real `pier up`, and reads
pier's errors as the error model: the schema is enough to use the API."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from pier.client import Client
from tests.conftest import IrisModel, PierProcess, running_pier
from tests.e2e.test_sdk_errors import NO_DOCKER

PACKAGE = "pier_generated"
PAGE = 2
"""The nodes in a page of GET nodes, small enough that a few nodes take several pages."""


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PierProcess]:
    env = {**NO_DOCKER, "PIER_API__NODE_PAGE_SIZE": str(PAGE)}
    with running_pier(tmp_path_factory.mktemp("generated") / "data", env=env) as pier:
        yield pier


@pytest.fixture(scope="module")
def generated(up: PierProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated package, imported from a temporary directory."""
    root = tmp_path_factory.mktemp("client")
    schema = root / "openapi.json"
    with httpx.Client(trust_env=False) as http:
        schema.write_bytes(http.get(f"{up.url}/openapi.json").raise_for_status().content)
    tool = Path(sys.executable).with_name("openapi-python-client")
    env = {**os.environ, "PATH": f"{tool.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(tool), "generate", "--path", str(schema), "--meta", "none",
         "--output-path", str(root / PACKAGE), "--fail-on-warning"],
        capture_output=True, text=True, timeout=300, env=env, cwd=root,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def api(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def test_a_generated_client_pushes_a_model_and_creates_reads_deletes_a_node(
    generated: ModuleType, up: PierProcess, iris_onnx: IrisModel
) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")
    client = generated.AuthenticatedClient(base_url=up.url, token=up.token)
    with client as c, iris_onnx.path.open("rb") as model_file:
        pushed = api("models.push_model").sync(
            "default", "iris", client=c, body=types.File(payload=model_file),
            format_=models.PushModelFormat.ONNX,
        )  # fmt: skip
        assert isinstance(pushed, models.ModelVersion), pushed
        assert pushed.version == 1

        spec = models.NodeSpec(model="iris", min_instances=0, env=models.NodeSpecEnv())
        spec.env["MODE"] = "test"
        body = models.NodeCreate(name="iris", spec=spec)
        created = api("nodes.create_node").sync("default", client=c, body=body)
        assert isinstance(created, models.NodeView), created
        assert created.spec.model_version == 1 and created.kind == "model"

        read = api("nodes.get_node").sync("default", "iris", client=c)
        assert isinstance(read, models.NodeView), read
        assert read.status == models.NodeStatus.HEALTHY  # min 0: nothing is missing
        assert read.spec.env["MODE"] == "test" and read.spec.configuration == "c1.2"

        deleted = api("nodes.delete_node").sync("default", "iris", client=c)
        assert isinstance(deleted, models.NodeView) and deleted.status == models.NodeStatus.DELETING
        get_node = api("nodes.get_node")
        up.wait_for(
            lambda: isinstance(get_node.sync("default", "iris", client=c), models.ErrorBody),
            what="the node to be gone",
        )


def test_a_generated_client_reads_errors_as_the_error_model(
    generated: ModuleType, up: PierProcess
) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    client = generated.AuthenticatedClient(base_url=up.url, token=up.token)
    with client as c:
        missing = api("nodes.get_node").sync("default", "ghost", client=c)
        body = models.NodeCreate(name="x", spec=models.NodeSpec(model="nope"))
        unknown_model = api("nodes.create_node").sync("default", client=c, body=body)
    assert isinstance(missing, models.ErrorBody)
    assert (missing.error.code, missing.error.type_) == ("not_found", "node_not_found")
    assert isinstance(unknown_model, models.ErrorBody)
    assert unknown_model.error.type_ == "model_not_found"


def test_a_generated_client_manages_an_alias_and_reads_node_in_use(
    generated: ModuleType, up: PierProcess, iris_onnx: IrisModel
) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    client = generated.AuthenticatedClient(base_url=up.url, token=up.token)
    with client as c, iris_onnx.path.open("rb") as model_file:
        types = importlib.import_module(f"{PACKAGE}.types")
        api("models.push_model").sync(
            "default", "iris-a", client=c, body=types.File(payload=model_file),
            format_=models.PushModelFormat.ONNX,
        )  # fmt: skip
        node = models.NodeCreate(
            name="alias-a", spec=models.NodeSpec(model="iris-a", min_instances=0)
        )
        assert isinstance(
            api("nodes.create_node").sync("default", client=c, body=node), models.NodeView
        )
        spec = models.AliasSpec(nodes=[models.AliasShare(node="alias-a")])
        body = models.AliasCreate(name="prod", spec=spec)
        created = api("aliases.create_alias").sync("default", client=c, body=body)
        assert isinstance(created, models.AliasView), created
        assert [(n.node, n.share) for n in created.nodes] == [("alias-a", 100)]

        read = api("aliases.get_alias").sync("default", "prod", client=c)
        assert isinstance(read, models.AliasView) and read.spec.access == models.Access.PRIVATE
        listed = api("aliases.list_aliases").sync("default", client=c)
        assert isinstance(listed, models.AliasList) and [a.name for a in listed.aliases] == ["prod"]

        in_use = api("nodes.delete_node").sync("default", "alias-a", client=c)
        assert isinstance(in_use, models.ErrorBody) and in_use.error.type_ == "node_in_use"
        api("aliases.delete_alias").sync("default", "prod", client=c)
        deleted = api("nodes.delete_node").sync("default", "alias-a", client=c)
        assert isinstance(deleted, models.NodeView)


def test_nodes_come_in_complete_stable_pages_that_the_sdk_and_cli_follow(
    generated: ModuleType, up: PierProcess, iris_onnx: IrisModel
) -> None:
    with Client(url=up.url, token=up.token) as sdk:
        paged_nodes(generated, up, iris_onnx, sdk)


def paged_nodes(generated: ModuleType, up: PierProcess, iris_onnx: IrisModel, sdk: Client) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    sdk.push_model(iris_onnx.path, "iris-pages")
    names = ["page-c", "page-a", "page-e", "page-b", "page-d"]
    for name in names:
        sdk.create_node(name, model="iris-pages", min_instances=0)
    client = generated.AuthenticatedClient(base_url=up.url, token=up.token)
    seen: list[str] = []
    made: list[str] = []
    after: Any = types_unset()
    with client as c:
        while True:  # by name, PAGE at a time, each after the last: every node once
            page = api("nodes.list_nodes").sync("default", client=c, after=after)
            assert isinstance(page, models.NodeList), page
            assert len(page.nodes) <= PAGE
            seen += [n.name for n in page.nodes]
            if not isinstance(page.next_after, str):
                break
            if "page-b" in seen and "page-0" not in made:  # before the cursor: not read now
                made.append(sdk.create_node("page-0", model="iris-pages", min_instances=0).name)
            after = page.next_after
        too_many = api("nodes.list_nodes").sync("default", client=c, limit=10**6)
    mine = [n for n in seen if n.startswith("page-")]
    assert mine == sorted(names)
    assert isinstance(too_many, models.ErrorBody) and too_many.error.field == "limit"
    listed = [n.name for n in sdk.list_nodes() if n.name.startswith("page-")]
    assert listed == ["page-0", *sorted(names)]  # the SDK reads every page
    cli = [n["name"] for n in up.cli_json("node", "list")["nodes"]]
    cli = [name for name in cli if name.startswith("page-")]
    assert cli == listed
    for name in listed:
        sdk.delete_node(name)


def types_unset() -> Any:
    return importlib.import_module(f"{PACKAGE}.types").UNSET
