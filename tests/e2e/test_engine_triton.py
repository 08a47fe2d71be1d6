"""Engine triton on a real `pier up`: a node's instance runs NVIDIA's tritonserver (from
the nvidia-pytriton wheel, which `make triton` installs) on a model repository pier
writes, and tritonclient reaches it through the gateway like any model node: an ONNX
model with dynamic batching (each caller gets its own rows), Triton's own model
configuration and statistics, its metrics scraped by the control plane under the
node's labels; BYTES tensors in and out (Triton's string example client), in binary
and JSON; the warm-up on the example request the model was pushed with, in the process
that serves it, and a failed warm-up's reason in the node's events; a pushed Triton
model directory (config.pbtxt + 1/model.py, Python backend) served as it is; a Triton
directory on pier's engine refused naming engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton

import pier
from pier.modelserver.triton.distribution import TritonNotInstalled, find_distribution
from tests.conftest import IrisModel, PierProcess, running_pier
from tests.triton_models import write_model

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
MAX_BATCH_SIZE = 8

ADD_SUB_CONFIG = """
name: "add_sub"
backend: "python"
max_batch_size: 4
input [{ name: "A" data_type: TYPE_FP32 dims: [2] }, { name: "B" data_type: TYPE_FP32 dims: [2] }]
output [
  { name: "SUM" data_type: TYPE_FP32 dims: [2] },
  { name: "DIFF" data_type: TYPE_FP32 dims: [2] }
]
"""
ADD_SUB_MODEL = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            a, b = (pb_utils.get_input_tensor_by_name(request, n).as_numpy() for n in "AB")
            outputs = {"SUM": a + b, "DIFF": a - b}
            responses.append(pb_utils.InferenceResponse(
                [pb_utils.Tensor(n, v.astype(np.float32)) for n, v in outputs.items()]
            ))
        return responses
"""
"""As Triton's own add_sub example: ``as_numpy()`` and ``Tensor(name, array)``, which
the wheel's stub gets right only on the numpy 1 it is built against."""


FIRST_WORD = """
class Model:
    inputs = [{"name": "word", "datatype": "BYTES", "shape": [1]}]
    outputs = [
        {"name": "length", "datatype": "INT64", "shape": [1]},
        {"name": "first", "datatype": "BYTES", "shape": [1]},
    ]

    def load(self):
        self.first = None

    def predict(self, inputs):
        word = inputs["word"][0].decode()
        if word not in ("hello", "hi"):
            raise ValueError(f"unknown word {word!r}")
        self.first = self.first or word
        return {"length": [len(word)], "first": [self.first]}
"""
"""A model whose derived warm-up fails ("0", "", "a" are refused) and that answers the
first word it was given: its example's, when the warm-up ran on it in this process."""


def words(word: str) -> dict[str, Any]:
    return {"inputs": [{"name": "word", "datatype": "BYTES", "shape": [1], "data": [word]}]}


def write_first_word(directory: Path) -> Path:
    model = directory / "first_word"
    model.mkdir()
    (model / "model.py").write_text(FIRST_WORD)
    return model


def write_add_sub(directory: Path) -> Path:
    """A Triton model directory for the Python backend, as users bring them."""
    model = directory / "add_sub"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(ADD_SUB_CONFIG)
    (model / "1" / "model.py").write_text(ADD_SUB_MODEL)
    return model


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory, iris_onnx: IrisModel) -> Iterator[PierProcess]:
    try:
        find_distribution()
    except TritonNotInstalled as exc:
        pytest.fail(f"{exc} (`make test` installs it)")
    models = tmp_path_factory.mktemp("triton-repository")
    data_dir = tmp_path_factory.mktemp("engine-triton") / "data"
    with running_pier(data_dir, env=NO_DOCKER, timeout_s=90) as up:
        with pier.Client(up.url, up.token) as client:
            client.push_model(iris_onnx.path, "iris")
            client.push_model(write_add_sub(models), "add_sub", trust=True)
            client.create_node(
                "iris", model="iris", engine="triton", access="public",
                max_batch_size=MAX_BATCH_SIZE, batch_delay_ms=20,
            )  # fmt: skip
            client.create_node("add-sub", model="add_sub", engine="triton", access="public")
            client.push_model(write_model(models, "simple_string"), "simple_string", trust=True)
            client.create_node("strings", model="simple_string", engine="triton", access="public")
            example = json.dumps(words("hello")).encode()
            first_word = write_first_word(models)
            client.push_model(first_word, "first_word", trust=True, example=example)
            client.push_model(first_word, "picky", trust=True)
            for model in ("first_word", "picky"):
                client.create_node(model.replace("_", "-"), model=model, engine="triton")
            for node in ("iris", "add-sub", "strings", "first-word"):
                client.wait_node(node, timeout_s=120)
        yield up


@pytest.fixture
def iris(up: PierProcess) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(
        f"127.0.0.1:{up.gateway_port}/default/nodes/iris", concurrency=8
    )
    yield client
    client.close()


def features(x: np.ndarray) -> list[triton.InferInput]:
    request = triton.InferInput("X", list(x.shape), "FP32")
    request.set_data_from_numpy(x)
    return [request]


def test_tritonserver_answers_through_the_gateway(
    iris: triton.InferenceServerClient, iris_onnx: IrisModel
) -> None:
    assert iris.is_server_ready() and iris.is_model_ready("iris")
    assert iris.get_server_metadata()["name"] == "triton"  # Triton itself, not pier
    rows = [iris_onnx.features[i : i + n] for i, n in ((0, 1), (50, 3), (100, 2), (7, 1))]
    pending = [iris.async_infer("iris", features(x)) for x in rows for _ in range(4)]
    answers = [p.get_result().as_numpy("probabilities") for p in pending]
    for x, answer in zip([x for x in rows for _ in range(4)], answers, strict=True):
        start = int(np.flatnonzero((iris_onnx.features == x[0]).all(axis=1))[0])
        assert np.allclose(answer, iris_onnx.probabilities[start : start + len(x)], atol=1e-4)


def test_the_configuration_pier_wrote_asks_for_dynamic_batching(
    iris: triton.InferenceServerClient,
) -> None:
    config = iris.get_model_config("iris")
    assert config["backend"] == "python"
    assert config["max_batch_size"] == MAX_BATCH_SIZE
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 20_000
    assert [i["name"] for i in config["input"]] == ["X"]
    stats = iris.get_inference_statistics("iris")["model_stats"][0]
    assert stats["inference_count"] >= 1


def test_the_control_plane_scrapes_tritons_metrics(
    up: PierProcess, iris: triton.InferenceServerClient, iris_onnx: IrisModel
) -> None:
    iris.infer("iris", features(iris_onnx.features[:1]))
    with up.api() as api:
        text = api.get("/api/v1/projects/default/nodes/iris/metrics").text
    success = ("nv_inference_request_success{", "nv_inference_request_success_total{")
    [line] = [s for s in text.splitlines() if s.startswith(success)]
    assert 'model="iris"' in line and 'node="iris"' in line
    assert float(line.rsplit(" ", 1)[1]) >= 1


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_strings_as_the_example_client_checks_them_on_triton(up: PierProcess, binary: bool) -> None:
    client = triton.InferenceServerClient(f"127.0.0.1:{up.gateway_port}/default/nodes/strings")
    inputs = [triton.InferInput(name, [1, 16], "BYTES") for name in ("INPUT0", "INPUT1")]
    numbers = np.array([str(i).encode() for i in range(16)], dtype=np.object_)[None]
    inputs[0].set_data_from_numpy(numbers, binary_data=binary)
    inputs[1].set_data_from_numpy(np.full((1, 16), "1", dtype=np.object_), binary_data=binary)
    wanted = [triton.InferRequestedOutput(f"OUTPUT{i}", binary_data=binary) for i in (0, 1)]
    result = client.infer("simple_string", inputs, outputs=wanted)
    assert [int(x) for x in result.as_numpy("OUTPUT0")[0]] == list(range(1, 17))
    assert [int(x) for x in result.as_numpy("OUTPUT1")[0]] == list(range(-1, 15))
    client.close()


def test_the_model_warms_up_on_its_example_in_the_serving_process(up: PierProcess) -> None:
    called = up.cli("call", "first-word", "/v2/models/first_word/infer", "--data",
                    json.dumps(words("hi")))  # fmt: skip
    outputs = {o["name"]: o["data"] for o in json.loads(called.stdout)["outputs"]}
    assert outputs == {"length": [2], "first": ["hello"]}


def test_a_failed_warm_up_says_why_in_an_event(up: PierProcess) -> None:
    def failure() -> dict[str, Any] | None:
        with up.api() as api:
            found = api.get("/api/v1/projects/default/nodes/picky/events").json()["events"]
        failed = [e for e in found if e["kind"] == "instance_failed"]
        return failed[0] if failed else None

    event = up.wait_for(failure, what="an instance_failed event", timeout_s=90)
    with pier.Client(up.url, up.token) as client:
        client.delete_node("picky")
    assert "unknown word '0'" in event["message"]
    assert "pier model push --example" in event["message"]


def test_a_pushed_triton_model_directory_is_served_as_it_is(up: PierProcess) -> None:
    client = triton.InferenceServerClient(f"127.0.0.1:{up.gateway_port}/default/nodes/add-sub")
    a, b = np.array([[1, 2]], dtype=np.float32), np.array([[10, 20]], dtype=np.float32)
    inputs = [triton.InferInput(n, [1, 2], "FP32") for n in "AB"]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(b)
    answer = client.infer("add_sub", inputs)
    assert answer.as_numpy("SUM").tolist() == [[11, 22]]
    assert answer.as_numpy("DIFF").tolist() == [[-9, -18]]
    client.close()


def test_a_triton_model_directory_on_piers_engine_is_refused_naming_engine(
    up: PierProcess,
) -> None:
    with pier.Client(up.url, up.token) as client, pytest.raises(pier.InvalidSpec) as refused:
        client.create_node("add-sub-pier", model="add_sub")
    assert refused.value.field == "engine" and "--engine triton" in refused.value.message
