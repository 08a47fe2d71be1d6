"""`PATCH` of a node is one rule on the server, JSON Merge Patch: maps merge key by key,
null removes a key or resets a field; `pier node update --env` adds to what is there."""

from __future__ import annotations

import pier
from tests.conftest import IrisModel, PierProcess


def test_env_merges_key_by_key_and_null_resets(pier: PierProcess, iris_onnx: IrisModel) -> None:
    pier.cli("model", "push", str(iris_onnx.path), "--name", "iris")
    pier.cli("node", "create", "iris", "--model", "iris", "--min", "0", "--env", "A=1")
    pier.cli("node", "update", "iris", "--env", "B=2", "--max", "2")
    assert pier.node("iris")["spec"]["env"] == {"A": "1", "B": "2"}
    with pier_client(pier) as client:
        node = client.update_node("iris", env={"A": None}, max_instances=None)
    assert node.spec.env == {"B": "2"}
    assert node.spec.max_instances is None and node.spec.effective_max == 0


def pier_client(up: PierProcess) -> pier.Client:
    return pier.Client(up.url, up.token)
