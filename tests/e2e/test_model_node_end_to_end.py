"""A newcomer's path: push an ONNX model, create a 2-instance node, call it with
tritonclient through the gateway by path and by header."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.http as triton

from tests.conftest import IrisModel, PierProcess, running_pier


def push_and_create(pier: PierProcess, iris: IrisModel, *, instances: int = 2) -> None:
    pushed = pier.cli("model", "push", str(iris.path), "--name", "iris", "--output", "json")
    assert json.loads(pushed.stdout)["version"] == 1
    pier.cli("node", "create", "iris", "--model", "iris", "--min", str(instances), "--wait")


@pytest.fixture(scope="module")
def iris_node(
    tmp_path_factory: pytest.TempPathFactory, iris_onnx: IrisModel
) -> Iterator[PierProcess]:
    """One `pier up` with node iris (2 instances) for the checks that only call it."""
    with running_pier(tmp_path_factory.mktemp("iris-node") / "data") as up:
        push_and_create(up, iris_onnx)
        yield up


def infer(
    client: triton.InferenceServerClient, x: np.ndarray, headers: dict[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    inp = triton.InferInput("X", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    result = client.infer("iris", [inp], headers=headers)
    return result.as_numpy("label"), result.as_numpy("probabilities")


def test_tritonclient_through_the_gateway_matches_sklearn(
    iris_node: PierProcess, iris_onnx: IrisModel
) -> None:
    pier = iris_node
    with pier.api() as api:
        node = api.get("/api/v1/projects/default/nodes/iris").json()
    assert node["status"] == "Healthy"
    assert node["instances"] == {"healthy": 2, "total": 2, "target": 2}
    auth = {"Authorization": f"Bearer {pier.token}"}

    by_path = triton.InferenceServerClient(f"127.0.0.1:{pier.gateway_port}/default/nodes/iris")
    assert by_path.is_model_ready("iris", headers=auth)
    labels, probabilities = infer(by_path, iris_onnx.features, auth)
    np.testing.assert_array_equal(labels, iris_onnx.labels)
    np.testing.assert_allclose(probabilities, iris_onnx.probabilities, rtol=1e-4, atol=1e-5)

    by_header = triton.InferenceServerClient(f"127.0.0.1:{pier.gateway_port}")
    labels, _ = infer(by_header, iris_onnx.features[:10], {**auth, "x-node-id": "iris"})
    np.testing.assert_array_equal(labels, iris_onnx.labels[:10])
    metadata = by_header.get_model_metadata("iris", headers={**auth, "x-node-id": "iris"})
    assert metadata["inputs"][0]["name"] == "X"
    by_path.close()
    by_header.close()


def test_load_is_spread_over_both_instances(iris_node: PierProcess) -> None:
    pier = iris_node
    seen = set()
    with pier.gateway() as gw:
        for _ in range(40):
            r = gw.get("/default/nodes/iris/v2/health/ready")
            assert r.status_code == 200
            seen.add(r.headers["x-pier-instance"])
    assert len(seen) == 2
    with pier.api() as api:
        stats = api.get("/api/v1/projects/default/nodes/iris/stats").json()["instances"]
    assert sorted(s["id"] for s in stats) == sorted(seen)
    assert all(s["memory_bytes"] > 10 * 2**20 for s in stats)  # a Python process with a model


def test_cli_operates_the_node(pier: PierProcess, iris_onnx: IrisModel, tmp_path) -> None:
    push_and_create(pier, iris_onnx, instances=1)
    listing = pier.cli("node", "list").stdout
    assert "iris" in listing and "Healthy" in listing
    instances = json.loads(pier.cli("node", "instances", "iris", "--output", "json").stdout)
    assert [i["status"] for i in instances["instances"]] == ["Healthy"]
    request = iris_onnx.infer_request()
    (tmp_path / "req.json").write_text(json.dumps(request))
    called = pier.cli("call", "iris", "/v2/models/iris/infer", "--data", f"@{tmp_path}/req.json")
    outputs = {o["name"]: o for o in json.loads(called.stdout)["outputs"]}
    assert outputs["label"]["data"] == [int(iris_onnx.labels[0])]
    assert "MEMORY" in pier.cli("node", "stats", "iris").stdout
    logs = pier.cli("node", "logs", "iris").stdout
    assert logs.strip(), "instance logs are empty"
    models = pier.cli("model", "list").stdout
    assert "iris" in models
    pier.cli("node", "delete", "iris", "--wait")
    assert "iris" not in pier.cli("node", "list").stdout


def test_a_new_model_version_is_rolled_out_with_update(
    pier: PierProcess, iris_onnx: IrisModel
) -> None:
    push_and_create(pier, iris_onnx, instances=1)
    pier.cli("model", "push", str(iris_onnx.path), "--name", "iris")  # version 2
    out = pier.cli("node", "update", "iris", "--model", "iris", "--wait").stdout
    assert "replacing its instances one by one" in out
    node = pier.node("iris")
    assert node["spec"]["model_version"] == 2 and node["generation"] == 2
    assert [i["generation"] for i in pier.instances("iris")] == [2]
    with pier.gateway() as gw:
        metadata = gw.get("/default/nodes/iris/v2/models/iris").json()
    assert metadata["versions"] == ["2"]
