"""Engine triton on the docker runtime: a model node whose image has tritonserver and pier
(tests/docker/triton_image.py, as the official Triton image plus ``pip install pier``)
runs pier's launcher in its container, which writes the model repository there for the
model mounted read-only and becomes the image's tritonserver; the node becomes Healthy
on Triton's ready endpoint, tritonclient reaches Triton itself through the gateway, and
the control plane scrapes Triton's metrics from its own published port."""

from __future__ import annotations

import json

import docker
import numpy as np
import tritonclient.http as triton

from pier.domain.specs import TRITON_METRICS_PORT
from tests.conftest import IrisModel, PierProcess
from tests.e2e.test_model_node_end_to_end import infer


def test_a_triton_image_serves_a_model_node_through_the_gateway(
    pier: PierProcess, iris_onnx: IrisModel, triton_image: str
) -> None:
    pushed = pier.cli("model", "push", str(iris_onnx.path), "--name", "iris", "--output", "json")
    model_sha = json.loads(pushed.stdout)["sha256"]
    created = pier.cli(
        "node", "create", "iris", "--model", "iris", "--image", triton_image,
        "--engine", "triton", "--wait", "--wait-timeout", "150",
    )  # fmt: skip
    assert "iris: Healthy" in created.stderr, created.stdout + created.stderr
    assert {i["runtime"] for i in pier.instances("iris")} == {"docker"}

    auth = {"Authorization": f"Bearer {pier.token}"}
    client = triton.InferenceServerClient(f"127.0.0.1:{pier.gateway_port}/default/nodes/iris")
    try:
        assert client.get_server_metadata(headers=auth)["name"] == "triton"  # Triton itself
        assert client.get_model_config("iris", headers=auth)["backend"] == "python"
        labels, probabilities = infer(client, iris_onnx.features, auth)
    finally:
        client.close()
    np.testing.assert_array_equal(labels, iris_onnx.labels)
    np.testing.assert_allclose(probabilities, iris_onnx.probabilities, rtol=1e-4, atol=1e-5)

    engine = docker.from_env()
    try:
        [container] = engine.containers.list(filters={"label": pier.container_labels("iris")})
        [mount] = container.attrs["Mounts"]
        ports = container.attrs["NetworkSettings"]["Ports"]
    finally:
        engine.close()
    assert mount["Destination"] == f"/pier/model/{model_sha}.onnx" and mount["RW"] is False
    assert ports[f"{TRITON_METRICS_PORT}/tcp"][0]["HostIp"] == "127.0.0.1"

    with pier.api() as api:
        text = api.get("/api/v1/projects/default/nodes/iris/metrics").text
    success = ("nv_inference_request_success{", "nv_inference_request_success_total{")
    [line] = [s for s in text.splitlines() if s.startswith(success)]
    assert 'model="iris"' in line and 'node="iris"' in line
    assert float(line.rsplit(" ", 1)[1]) >= 1
