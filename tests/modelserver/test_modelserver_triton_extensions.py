"""Triton's extensions on the model server itself, read by tritonclient: model
configuration, statistics, repository index, classification, and the raw binary request."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.triton_models import write_model

from .conftest import IrisModels, ModelServer, StartModelServer


@pytest.fixture
def simple(start_model_server: StartModelServer, tmp_path: Path) -> ModelServer:
    return start_model_server("simple", "python", write_model(tmp_path, "simple"))


def simple_inputs(rows: int = 1) -> list[triton.InferInput]:
    data = np.arange(16 * rows, dtype=np.int32).reshape(rows, 16)
    inputs = [triton.InferInput(name, [rows, 16], "INT32") for name in ("INPUT0", "INPUT1")]
    inputs[0].set_data_from_numpy(data)
    inputs[1].set_data_from_numpy(np.ones_like(data))
    return inputs


def test_server_metadata_lists_the_extensions(simple: ModelServer) -> None:
    client = triton.InferenceServerClient(simple.address)
    extensions = client.get_server_metadata()["extensions"]
    for extension in ("binary_tensor_data", "classification", "model_configuration"):
        assert extension in extensions
    assert "statistics" in extensions and "model_repository" in extensions


def test_model_config_is_derived_from_the_model(simple: ModelServer) -> None:
    config = triton.InferenceServerClient(simple.address).get_model_config("simple")
    assert config["name"] == "simple" and config["max_batch_size"] == 0
    assert [(t["name"], t["data_type"], t["dims"]) for t in config["input"]] == [
        ("INPUT0", "TYPE_INT32", [-1, 16]),
        ("INPUT1", "TYPE_INT32", [-1, 16]),
    ]
    assert [t["name"] for t in config["output"]] == ["OUTPUT0", "OUTPUT1"]
    assert "dynamic_batching" not in config


def test_statistics_count_successes_failures_and_samples(simple: ModelServer) -> None:
    client = triton.InferenceServerClient(simple.address)
    client.infer("simple", simple_inputs(1))
    client.infer("simple", simple_inputs(3))
    bad = triton.InferInput("INPUT0", [1, 16], "INT32")
    bad.set_data_from_numpy(np.zeros((1, 16), dtype=np.int32))
    with pytest.raises(InferenceServerException, match="missing input"):
        client.infer("simple", [bad])

    (stats,) = client.get_inference_statistics("simple")["model_stats"]
    assert (stats["name"], stats["version"]) == ("simple", "1")
    assert stats["inference_count"] == 4 and stats["execution_count"] == 2
    inference = stats["inference_stats"]
    assert inference["success"]["count"] == 2 and inference["success"]["ns"] > 0
    assert inference["fail"]["count"] == 1
    assert inference["compute_infer"]["count"] == 2 and inference["compute_infer"]["ns"] > 0
    assert sorted(batch["batch_size"] for batch in stats["batch_stats"]) == [1, 3]
    assert stats["last_inference"] > 0
    every = client.get_inference_statistics()["model_stats"]
    assert [entry["name"] for entry in every] == ["simple"]


def test_repository_index_lists_the_model_ready(simple: ModelServer) -> None:
    client = triton.InferenceServerClient(simple.address)
    index = client.get_model_repository_index()
    assert index == [{"name": "simple", "version": "1", "state": "READY", "reason": ""}]
    client.load_model("simple")  # already loaded: nothing to do
    with pytest.raises(InferenceServerException, match="does not unload"):
        client.unload_model("simple")


def test_classification_returns_the_top_classes(iris_server: ModelServer, iris: IrisModels) -> None:
    client = triton.InferenceServerClient(iris_server.address)
    x = iris.x[:5]
    tensor = triton.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    wanted = triton.InferRequestedOutput("probabilities", class_count=2)
    result = client.infer("iris", [tensor], outputs=[wanted])

    top = result.as_numpy("probabilities")
    assert top.shape == (5, 2)
    probabilities = iris.clf.predict_proba(x)  # type: ignore[attr-defined]
    for row, classes in zip(probabilities, top, strict=True):
        values, indices = zip(*(item.decode().split(":") for item in classes), strict=True)
        assert [int(i) for i in indices] == list(np.argsort(-row)[:2])
        np.testing.assert_allclose([float(v) for v in values], np.sort(row)[::-1][:2], atol=1e-4)


def test_raw_binary_request_feeds_the_only_input(
    iris_server: ModelServer, iris: IrisModels
) -> None:
    x = np.ascontiguousarray(iris.x[:3])
    headers = {"Inference-Header-Content-Length": "0"}
    with httpx.Client(base_url=iris_server.url) as client:
        response = client.post("/v2/models/iris/infer", content=x.tobytes(), headers=headers)
        ragged = client.post("/v2/models/iris/infer", content=x.tobytes()[:-4], headers=headers)
    assert response.status_code == 200, response.text
    outputs = {output["name"]: output for output in response.json()["outputs"]}
    assert outputs["label"]["shape"] == [3]
    assert outputs["label"]["data"] == iris.clf.predict(x).tolist()  # type: ignore[attr-defined]
    assert ragged.status_code == 400 and "cannot hold 44 bytes" in ragged.json()["error"]


def test_raw_binary_request_needs_a_model_with_one_input(simple: ModelServer) -> None:
    with httpx.Client(base_url=simple.url) as client:
        response = client.post(
            "/v2/models/simple/infer",
            content=bytes(128),
            headers={"Inference-Header-Content-Length": "0"},
        )
    assert response.status_code == 400 and "one input" in response.json()["error"]


def test_model_config_tells_the_dynamic_batching_of_the_node(
    start_model_server: StartModelServer, tmp_path: Path
) -> None:
    path = write_model(tmp_path, "simple")
    server = start_model_server(
        "simple", "python", path, "--max-batch-size", "8", "--batch-delay-ms", "2"
    )
    config = triton.InferenceServerClient(server.address).get_model_config("simple")
    assert config["max_batch_size"] == 8
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 2000
    assert [t["dims"] for t in config["input"]] == [[16], [16]]  # the batch dimension left out
