"""tritonclient against node URLs through the gateway, doing what Triton's example
clients do (simple_http_health_metadata.py but the server's name,
simple_http_infer_client.py, simple_http_string_infer_client.py) against models built
to their expectations, and reading Triton's extensions: model configuration,
statistics, repository index and classification."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

import pier
from tests.conftest import IrisModel, PierProcess, running_pier
from tests.triton_models import write_model

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
NODES = {"simple": "simple", "simple-string": "simple_string", "simple-identity": "simple_identity"}
"""Node name (a DNS label) -> model name (Triton's rules allow '_')."""
SMALL = 64 * 1024
"""The body limit of node ``small``."""
MiB = 2**20


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory, iris_onnx: IrisModel) -> Iterator[PierProcess]:
    models = tmp_path_factory.mktemp("triton-models")
    with running_pier(tmp_path_factory.mktemp("triton") / "data", env=NO_DOCKER) as running:
        with pier.Client(running.url, running.token) as client:
            for node, model in NODES.items():
                client.push_model(write_model(models, model), model, trust=True)
                client.create_node(node, model=model, access="public")
            client.push_model(iris_onnx.path, "iris")
            client.create_node("iris", model="iris", access="public")
            client.create_node("small", model="simple", access="public", max_body_bytes=SMALL)
            for node in (*NODES, "iris", "small"):
                client.wait_node(node, timeout_s=120)
        yield running


def node_client(up: PierProcess, node: str) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(f"127.0.0.1:{up.gateway_port}/default/nodes/{node}")
    yield client
    client.close()


@pytest.fixture
def simple(up: PierProcess) -> Iterator[triton.InferenceServerClient]:
    yield from node_client(up, "simple")


def simple_request(
    client: triton.InferenceServerClient, model: str, *, outputs: bool = True, **options: object
) -> triton.InferResult:
    """What simple_http_infer_client.py sends: INPUT0 0..15 as JSON, INPUT1 -1s in binary."""
    inputs = [triton.InferInput(name, [1, 16], "INT32") for name in ("INPUT0", "INPUT1")]
    inputs[0].set_data_from_numpy(np.arange(16, dtype=np.int32)[None], binary_data=False)
    inputs[1].set_data_from_numpy(np.full((1, 16), -1, dtype=np.int32), binary_data=True)
    wanted = [
        triton.InferRequestedOutput("OUTPUT0", binary_data=True),
        triton.InferRequestedOutput("OUTPUT1", binary_data=False),
    ]
    query = {"test_1": 1, "test_2": 2}
    return client.infer(
        model, inputs, outputs=wanted if outputs else None, query_params=query, **options
    )


def test_health_and_metadata_as_the_example_client_checks_them(
    simple: triton.InferenceServerClient,
) -> None:
    assert simple.is_server_live(query_params={"test_1": 1, "test_2": 2})
    assert simple.is_server_ready()
    assert simple.is_model_ready("simple")
    assert simple.get_server_metadata()["name"] == "pier"  # the one check left out
    metadata = simple.get_model_metadata("simple", query_params={"test_1": 1, "test_2": 2})
    assert metadata["name"] == "simple"
    with pytest.raises(InferenceServerException) as caught:
        simple.get_model_metadata("wrong_model_name")
    assert "Request for unknown model" in caught.value.message()


@pytest.mark.parametrize(
    "compression", [{}, {"request_compression_algorithm": "gzip"}], ids=["plain", "gzip"]
)
def test_sum_and_difference_as_the_example_client_checks_them(
    simple: triton.InferenceServerClient, compression: dict[str, str]
) -> None:
    expected_sum = np.arange(16, dtype=np.int32)[None] - 1
    for outputs in (True, False):
        result = simple_request(simple, "simple", outputs=outputs, **compression)
        np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), expected_sum)
        np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), expected_sum + 2)
    assert len(simple.get_inference_statistics(model_name="simple")["model_stats"]) == 1
    with pytest.raises(InferenceServerException) as caught:
        simple_request(simple, "wrong_model_name")
    assert caught.value.message().startswith("Request for unknown model")


def test_strings_as_the_example_client_checks_them(up: PierProcess) -> None:
    for client in node_client(up, "simple-string"):
        inputs = [triton.InferInput(name, [1, 16], "BYTES") for name in ("INPUT0", "INPUT1")]
        numbers = np.array([str(i).encode() for i in range(16)], dtype=np.object_)[None]
        inputs[0].set_data_from_numpy(numbers, binary_data=True)
        inputs[1].set_data_from_numpy(np.full((1, 16), b"1", dtype=np.object_), binary_data=False)
        wanted = [
            triton.InferRequestedOutput("OUTPUT0", binary_data=True),
            triton.InferRequestedOutput("OUTPUT1", binary_data=False),
        ]
        result = client.infer("simple_string", inputs, outputs=wanted)
        assert [int(x) for x in result.as_numpy("OUTPUT0")[0]] == list(range(1, 17))
        assert [int(x) for x in result.as_numpy("OUTPUT1")[0]] == list(range(-1, 15))


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("element", [b"he\x00llo", b"\x00\x01\x02\x03"])
def test_bytes_come_back_as_sent(up: PierProcess, binary: bool, element: bytes) -> None:
    data = np.full((1, 16), element, dtype=np.object_)
    for client in node_client(up, "simple-identity"):
        tensor = triton.InferInput("INPUT0", [1, 16], "BYTES")
        tensor.set_data_from_numpy(data, binary_data=binary)
        wanted = [triton.InferRequestedOutput("OUTPUT0", binary_data=binary)]
        echoed = client.infer("simple_identity", [tensor], outputs=wanted).as_numpy("OUTPUT0")
        as_bytes = [x if isinstance(x, bytes) else x.encode() for x in echoed.reshape(-1)]
        assert as_bytes == [element] * 16


def test_model_configuration_statistics_and_index(simple: triton.InferenceServerClient) -> None:
    config = simple.get_model_config("simple")
    assert [(t["name"], t["data_type"]) for t in config["input"]] == [
        ("INPUT0", "TYPE_INT32"),
        ("INPUT1", "TYPE_INT32"),
    ]
    assert [t["name"] for t in config["output"]] == ["OUTPUT0", "OUTPUT1"]
    before = simple.get_inference_statistics("simple")["model_stats"][0]
    for _ in range(3):
        simple_request(simple, "simple")
    after = simple.get_inference_statistics("simple")["model_stats"][0]
    assert after["inference_count"] - before["inference_count"] == 3
    assert after["execution_count"] - before["execution_count"] == 3
    success = after["inference_stats"]["success"]
    assert success["count"] >= 3 and success["ns"] > before["inference_stats"]["success"]["ns"]
    index = simple.get_model_repository_index()
    assert index == [{"name": "simple", "version": "1", "state": "READY", "reason": ""}]
    assert "statistics" in simple.get_server_metadata()["extensions"]


def test_classification_through_the_gateway(up: PierProcess, iris_onnx: IrisModel) -> None:
    for client in node_client(up, "iris"):
        x = iris_onnx.features[:4]
        tensor = triton.InferInput("X", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        wanted = triton.InferRequestedOutput("probabilities", class_count=1)
        top = client.infer("iris", [tensor], outputs=[wanted]).as_numpy("probabilities")
        labels = [int(item.decode().split(":")[1]) for item in top.reshape(-1)]
        assert labels == iris_onnx.labels[:4].tolist()


def test_a_node_name_stays_a_dns_label(up: PierProcess) -> None:
    with up.api() as api:
        refused = api.post(
            "/api/v1/projects/default/nodes",
            json={"name": "simple_string", "spec": {"model": "simple_string"}},
        )
        model = api.get("/api/v1/projects/default/models/simple_string")
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "name"
    assert model.status_code == 200


def test_a_raw_binary_request_through_the_gateway(up: PierProcess, iris_onnx: IrisModel) -> None:
    x = np.ascontiguousarray(iris_onnx.features[:2])
    with httpx.Client(base_url=up.gateway_url, trust_env=False) as gateway:
        response = gateway.post(
            "/default/nodes/iris/v2/models/iris/infer",
            content=x.tobytes(),
            headers={"Inference-Header-Content-Length": "0"},
        )
    assert response.status_code == 200, response.text
    labels = {o["name"]: o["data"] for o in response.json()["outputs"]}["label"]
    assert labels == iris_onnx.labels[:2].tolist()


@pytest.mark.parametrize(("node", "limit"), [("small", SMALL), ("simple", 16 * MiB)])
def test_the_nodes_body_limit_holds_at_the_gateway_and_the_instance(
    up: PierProcess, node: str, limit: int
) -> None:
    path = f"/default/nodes/{node}/v2/models/simple/infer"
    inflating = gzip.compress(b" " * (limit + 1))  # small on the wire, over the limit inflated
    with httpx.Client(base_url=up.gateway_url, trust_env=False, timeout=60) as gateway:
        at_gateway = gateway.post(path, content=b" " * (limit + 1))
        at_instance = gateway.post(path, content=inflating, headers={"Content-Encoding": "gzip"})
        fits = gateway.post(
            path, content=gzip.compress(b" " * limit), headers={"Content-Encoding": "gzip"}
        )
    assert at_gateway.status_code == 413 and at_gateway.json()["code"] == "body_too_large"
    assert at_gateway.json()["node"] == node and str(limit) in at_gateway.json()["error"]
    assert at_instance.status_code == 413, at_instance.text
    assert "x-pier-instance" in at_instance.headers  # answered by the model server
    assert at_instance.json() == {"error": f"request body is larger than {limit} bytes"}
    assert fits.status_code == 400 and "not valid JSON" in fits.json()["error"]
