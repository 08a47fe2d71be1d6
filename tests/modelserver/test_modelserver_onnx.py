"""The V2 protocol against a real server of the iris ONNX model."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from .conftest import IrisModels, ModelServer


@pytest.fixture
def client(iris_server: ModelServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=iris_server.url, timeout=5.0) as http:
        yield http


def _input(data: Any, *, name: str = "input", datatype: str = "FP32", shape: Any = None) -> dict:
    return {
        "name": name,
        "datatype": datatype,
        "shape": shape if shape is not None else list(np.shape(data)),
        "data": data,
    }


def test_metadata_is_derived_from_the_onnx_model(client: httpx.Client) -> None:
    response = client.get("/v2/models/iris")

    assert response.status_code == 200
    assert response.json() == {
        "name": "iris",
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        ],
    }
    assert client.get("/v2/models/iris/versions/1").json() == response.json()


def test_server_metadata_and_health(client: httpx.Client) -> None:
    assert "binary_tensor_data" in client.get("/v2").json()["extensions"]
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2/models/iris/ready").status_code == 200
    assert client.get("/v2/models/iris/versions/1/ready").status_code == 200


def test_tritonclient_with_default_settings_matches_sklearn(
    iris_server: ModelServer, iris: IrisModels
) -> None:
    client = triton.InferenceServerClient(iris_server.address)
    try:
        assert client.is_server_ready()
        assert client.is_model_ready("iris")
        assert client.get_model_metadata("iris")["platform"] == "onnxruntime_onnx"
        infer_input = triton.InferInput("input", list(iris.x.shape), "FP32")
        infer_input.set_data_from_numpy(iris.x)  # binary by default

        result = client.infer("iris", [infer_input], request_id="r-1")

        assert result.get_response()["id"] == "r-1"
        np.testing.assert_array_equal(result.as_numpy("label"), iris.clf.predict(iris.x))
        np.testing.assert_allclose(
            result.as_numpy("probabilities"), iris.clf.predict_proba(iris.x), atol=1e-5
        )
    finally:
        client.close()


def test_tritonclient_requested_outputs_filter_and_choose_encoding(
    iris_server: ModelServer, iris: IrisModels
) -> None:
    client = triton.InferenceServerClient(iris_server.address)
    try:
        infer_input = triton.InferInput("input", [3, 4], "FP32")
        infer_input.set_data_from_numpy(iris.x[:3], binary_data=False)
        outputs = [triton.InferRequestedOutput("probabilities", binary_data=False)]

        result = client.infer("iris", [infer_input], outputs=outputs, model_version="1")

        response = result.get_response()
        assert [output["name"] for output in response["outputs"]] == ["probabilities"]
        assert "data" in response["outputs"][0]
        np.testing.assert_allclose(
            result.as_numpy("probabilities"), iris.clf.predict_proba(iris.x[:3]), atol=1e-5
        )
        label_only = client.infer(
            "iris", [infer_input], outputs=[triton.InferRequestedOutput("label")]
        )
        assert label_only.as_numpy("probabilities") is None
        np.testing.assert_array_equal(label_only.as_numpy("label"), iris.clf.predict(iris.x[:3]))
    finally:
        client.close()


def test_tritonclient_gzip_request_and_errors(iris_server: ModelServer, iris: IrisModels) -> None:
    client = triton.InferenceServerClient(iris_server.address)
    try:
        infer_input = triton.InferInput("input", [2, 4], "FP32")
        infer_input.set_data_from_numpy(iris.x[:2])
        result = client.infer("iris", [infer_input], request_compression_algorithm="gzip")
        np.testing.assert_array_equal(result.as_numpy("label"), iris.clf.predict(iris.x[:2]))

        with pytest.raises(InferenceServerException, match="version '7' is not found") as error:
            client.infer("iris", [infer_input], model_version="7")
        assert error.value.status() == "404"
    finally:
        client.close()


def test_json_inference_without_binary_data(client: httpx.Client, iris: IrisModels) -> None:
    rows = iris.x[:2].tolist()
    request = {"id": "json-1", "inputs": [_input(rows)]}  # nested lists

    response = client.post("/v2/models/iris/infer", json=request)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "inference-header-content-length" not in response.headers
    body = response.json()
    assert body["id"] == "json-1"
    assert body["model_name"] == "iris"
    assert body["model_version"] == "1"
    label, probabilities = body["outputs"]
    assert label == {
        "name": "label",
        "datatype": "INT64",
        "shape": [2],
        "data": iris.clf.predict(iris.x[:2]).tolist(),
    }
    assert probabilities["shape"] == [2, 3]
    np.testing.assert_allclose(
        probabilities["data"], iris.clf.predict_proba(iris.x[:2]).ravel(), atol=1e-5
    )


def test_flat_json_data_and_version_path(client: httpx.Client, iris: IrisModels) -> None:
    request = {
        "inputs": [_input(iris.x[:2].ravel().tolist(), shape=[2, 4])],
        "outputs": [{"name": "label"}],
    }

    response = client.post("/v2/models/iris/versions/1/infer", json=request)

    assert response.status_code == 200
    assert response.json()["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [2], "data": [0, 0]}
    ]


def test_binary_output_requested_by_request_parameter(client: httpx.Client) -> None:
    request = {
        "inputs": [_input([[5.1, 3.5, 1.4, 0.2]])],
        "parameters": {"binary_data_output": True},
    }

    response = client.post("/v2/models/iris/infer", json=request)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    header_length = int(response.headers["inference-header-content-length"])
    header = orjson.loads(response.content[:header_length])
    sizes = [output["parameters"]["binary_data_size"] for output in header["outputs"]]
    assert sizes == [8, 12]  # one INT64 label, three FP32 probabilities
    assert len(response.content) == header_length + sum(sizes)


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"inputs": [_input([[1.0, 2.0, 3.0, 4.0]], name="x")]}, "unknown input 'x'"),
        ({"inputs": [_input([[1.0, 2.0, 3.0]])]}, "has shape [1, 3], model expects [-1, 4]"),
        ({"inputs": [_input([[1, 2, 3, 4]], datatype="FP64")]}, "datatype 'FP64'"),
        ({"inputs": [_input([[1.0, 2.0, 3.0, 4.0]], datatype="NOPE")]}, "datatype 'NOPE'"),
        ({"inputs": [_input([1.0, 2.0], shape=[1, 4])]}, "has 2 elements"),
        ({"inputs": [_input([["a", "b", "c", "d"]])]}, "data is not FP32"),
        ({"inputs": [_input([[1.0, 2.0], [3.0]], shape=[1, 4])]}, "input 'input'"),
        ({"inputs": []}, "non-empty 'inputs'"),
        ({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4]}]}, "neither 'data'"),
        (
            {"inputs": [_input([[1.0, 2.0, 3.0, 4.0]])], "outputs": [{"name": "nope"}]},
            "unknown output 'nope'",
        ),
        ({"inputs": "input"}, "non-empty 'inputs'"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_input_is_a_400_with_a_message(
    client: httpx.Client, request_body: Any, message: str
) -> None:
    response = client.post("/v2/models/iris/infer", json=request_body)

    assert response.status_code == 400
    assert message in response.json()["error"]


def test_malformed_bodies_are_400(client: httpx.Client) -> None:
    not_json = client.post("/v2/models/iris/infer", content=b"{not json")
    assert not_json.status_code == 400
    assert "not valid JSON" in not_json.json()["error"]

    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP32",
                    "shape": [1, 4],
                    "parameters": {"binary_data_size": 16},
                }
            ]
        }
    )
    short = client.post(
        "/v2/models/iris/infer",
        content=header + b"\0" * 8,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert short.status_code == 400
    assert "runs past the end" in short.json()["error"]

    garbled = client.post(
        "/v2/models/iris/infer", content=b"xx", headers={"Content-Encoding": "gzip"}
    )
    assert garbled.status_code == 400
    zipped = client.post(
        "/v2/models/iris/infer",
        content=gzip.compress(orjson.dumps({"inputs": [_input([[1.0, 2.0, 3.0, 4.0]])]})),
        headers={"Content-Encoding": "gzip"},
    )
    assert zipped.status_code == 200


def test_unknown_model_and_path_are_404(client: httpx.Client) -> None:
    infer = client.post("/v2/models/other/infer", json={"inputs": []})
    assert infer.status_code == 404
    assert infer.json() == {"error": "Request for unknown model: 'other' is not found"}
    assert client.get("/v2/models/other").status_code == 404
    assert client.get("/v2/models/iris/versions/2").status_code == 404
    unknown = client.get("/nowhere")
    assert unknown.status_code == 404
    assert "error" in unknown.json()
    assert client.get("/v2/models/iris/infer").status_code == 405


def test_metrics_count_requests(client: httpx.Client) -> None:
    client.post("/v2/models/iris/infer", json={"inputs": [_input([[1.0, 2.0, 3.0, 4.0]] * 3)]})
    client.post("/v2/models/nope/infer", json={})

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'pier_modelserver_requests_total{endpoint="infer",model="iris",status="200"}' in text
    assert 'pier_modelserver_requests_total{endpoint="infer",model="unknown",status="404"}' in text
    assert "pier_modelserver_request_duration_seconds_bucket{" in text
    assert 'pier_modelserver_requests_in_flight{model="iris"}' in text
    inferences = _sample(text, 'pier_modelserver_inferences_total{model="iris"}')
    executions = _sample(text, 'pier_modelserver_inference_executions_total{model="iris"}')
    assert inferences >= executions + 2  # the batch of three counts three samples


def _sample(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not in /metrics")
