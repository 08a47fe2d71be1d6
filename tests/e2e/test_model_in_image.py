"""A model served by pier's model server inside the user's own image, on a real Docker
engine; and image nodes whose health check and metrics live on a port of their own."""

from __future__ import annotations

import json
from collections.abc import Iterator

import docker
import numpy as np
import pytest
import tritonclient.http as triton

from tests.conftest import IrisModel, PierProcess
from tests.e2e.test_model_node_end_to_end import infer


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


def test_a_model_is_served_from_an_image_that_has_the_model_server(
    pier: PierProcess, iris_onnx: IrisModel, modelserver_image: str, engine: docker.DockerClient
) -> None:
    pushed = pier.cli("model", "push", str(iris_onnx.path), "--name", "iris", "--output", "json")
    model_sha = json.loads(pushed.stdout)["sha256"]
    created = pier.cli(
        "node", "create", "iris", "--model", "iris", "--image", modelserver_image,
        "--min", "2", "--wait", "--wait-timeout", "120",
    )  # fmt: skip
    assert "iris: Healthy" in created.stderr
    node = pier.node("iris")
    assert node["status"] == "Healthy"
    assert "@sha256:" in node["pinned_image"]
    assert {i["runtime"] for i in pier.instances("iris")} == {"docker"}
    assert "model iris:1 in image" in pier.cli("node", "get", "iris").stdout

    auth = {"Authorization": f"Bearer {pier.token}"}
    client = triton.InferenceServerClient(f"127.0.0.1:{pier.gateway_port}/default/nodes/iris")
    try:
        assert client.is_model_ready("iris", headers=auth)
        labels, probabilities = infer(client, iris_onnx.features, auth)
    finally:
        client.close()
    np.testing.assert_array_equal(labels, iris_onnx.labels)
    np.testing.assert_allclose(probabilities, iris_onnx.probabilities, rtol=1e-4, atol=1e-5)

    # the model is mounted read-only from pier's store; the port is published on 127.0.0.1
    running = engine.containers.list(filters={"label": pier.container_labels("iris")})
    assert len(running) == 2
    for container in running:
        [mount] = container.attrs["Mounts"]
        assert mount["Source"].endswith(f"{model_sha}.onnx")
        assert mount["Destination"] == f"/pier/model/{model_sha}.onnx"
        assert mount["RW"] is False
        assert container.attrs["Config"]["Image"] == node["pinned_image"]
        bindings = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"]
        assert bindings[0]["HostIp"] == "127.0.0.1"

    # the model server's own metrics, labelled by node and instance
    with pier.api() as api:
        metrics = api.get("/api/v1/projects/default/nodes/iris/metrics").text
    ids = {i["id"] for i in pier.instances("iris")}
    assert all(f'instance="{i}"' in metrics for i in ids)
    assert 'node="iris"' in metrics


def test_an_image_without_the_model_server_fails_with_a_clear_reason(
    pier: PierProcess, iris_onnx: IrisModel, echo_image: str
) -> None:
    pier.cli("model", "push", str(iris_onnx.path), "--name", "iris")
    waited = pier.cli(
        "node", "create", "iris", "--model", "iris", "--image", echo_image,
        "--wait", "--wait-timeout", "60", check=False,
    )  # fmt: skip
    assert waited.returncode == 1, waited.stdout + waited.stderr
    reasons = " ".join(
        e["message"]
        for e in pier.events("iris")
        if e["kind"] in ("instance_create_failed", "instance_failed")
    )
    assert "could not run python3 -m pier.modelserver" in reasons, reasons
    assert "exec python3 failed" in reasons  # the container's own last log line


def test_health_and_metrics_on_a_port_of_their_own(
    pier: PierProcess, echo_image: str, engine: docker.DockerClient
) -> None:
    """The image serves traffic on 8080 and /ready and metrics on 9090 only."""
    pier.cli(
        "node", "create", "web", "--image", echo_image, "--port", "8080",
        "--env", "ADMIN_PORT=9090",
        "--health", "/ready", "--health-port", "9090", "--health-interval", "0.5",
        "--metrics", "/cgi-bin/metrics", "--metrics-port", "9090",
        "--wait", "--wait-timeout", "60",
    )  # fmt: skip
    assert pier.node("web")["status"] == "Healthy"
    [container] = engine.containers.list(filters={"label": pier.container_labels("web")})
    ports = container.attrs["NetworkSettings"]["Ports"]
    assert {"8080/tcp", "9090/tcp"} <= set(ports)
    assert all(b[0]["HostIp"] == "127.0.0.1" for b in ports.values() if b)
    with pier.gateway() as gw:
        echoed = gw.get("/default/nodes/web/cgi-bin/echo/hi")
        not_on_main_port = gw.get("/default/nodes/web/ready")
    assert echoed.status_code == 200
    assert not_on_main_port.status_code == 404  # /ready lives on the admin port only
    with pier.api() as api:
        metrics = api.get("/api/v1/projects/default/nodes/web/metrics").text
    [instance] = pier.instances("web")
    assert f'testimage_up{{version="1",node="web",instance="{instance["id"]}"}} 1' in metrics
