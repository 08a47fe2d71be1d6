"""The server process: liveness before readiness, load failures, SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import tritonclient.http as triton

from .conftest import IrisModels, StartModelServer

# load() waits until a file named "go" appears next to model.py, so the test decides
# when loading ends without sleeping for a guessed time.
GATED_MODEL = """
import pathlib
import time

import numpy as np


class Model:
    inputs = [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}]
    outputs = [{"name": "y", "datatype": "FP32", "shape": [-1]}]

    def load(self):
        go = pathlib.Path(__file__).parent / "go"
        while not go.exists():
            time.sleep(0.01)

    def predict(self, inputs):
        return {"y": inputs["x"].sum(axis=1)}
"""


def _gated_model(tmp_path: Path) -> Path:
    directory = tmp_path / "gated"
    directory.mkdir()
    (directory / "model.py").write_text(GATED_MODEL)
    return directory


def _stop_within(process: subprocess.Popen[bytes], timeout_s: float) -> tuple[int, float]:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=timeout_s)
    return code, time.monotonic() - started


def test_ready_only_after_the_model_is_loaded(
    tmp_path: Path, start_model_server: StartModelServer
) -> None:
    directory = _gated_model(tmp_path)
    server = start_model_server("gated", "python", directory, wait_ready=False)

    with httpx.Client(base_url=server.url, timeout=5.0) as client:
        assert client.get("/v2/health/live").status_code == 200
        assert client.get("/v2/health/ready").status_code == 503
        assert client.get("/v2/models/gated/ready").status_code == 503
        infer = client.post(
            "/v2/models/gated/infer",
            json={"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}]},
        )
        assert infer.status_code == 503
        assert "not ready" in infer.json()["error"]

        (directory / "go").touch()
        server.wait_ready()

        assert client.get("/v2/models/gated/ready").status_code == 200
        assert client.get("/v2/models/gated").json()["platform"] == "python"
    assert "model loaded" in server.logs()


def test_sigterm_exits_promptly(iris: IrisModels, start_model_server: StartModelServer) -> None:
    server = start_model_server("iris", "onnx", iris.onnx_path)
    with httpx.Client(base_url=server.url) as client:  # an idle keep-alive connection
        assert client.get("/v2/health/ready").status_code == 200

        code, elapsed_s = _stop_within(server.process, timeout_s=5)

    assert code == 0
    assert elapsed_s < 1.5
    assert "model server stopped" in server.logs()


def test_sigterm_while_loading_exits_promptly(
    tmp_path: Path, start_model_server: StartModelServer
) -> None:
    server = start_model_server("gated", "python", _gated_model(tmp_path), wait_ready=False)
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/v2/health/live").status_code == 200

    code, elapsed_s = _stop_within(server.process, timeout_s=5)

    assert code == 0
    assert elapsed_s < 1.5


def test_a_model_that_fails_to_load_exits_with_1(
    tmp_path: Path, start_model_server: StartModelServer
) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    server = start_model_server("broken", "onnx", broken, wait_ready=False)

    assert server.process.wait(timeout=30) == 1
    assert "model load failed" in server.logs()


def test_a_failed_warm_up_is_one_log_line_saying_why(
    tmp_path: Path, start_model_server: StartModelServer
) -> None:
    (tmp_path / "model.py").write_text(
        "class Model:\n"
        "    inputs = [{'name': 'x', 'datatype': 'BYTES', 'shape': [1]}]\n"
        "    outputs = [{'name': 'y', 'datatype': 'BYTES', 'shape': [1]}]\n"
        "    def load(self): pass\n"
        "    def predict(self, inputs): raise ValueError('only real words')\n"
    )
    server = start_model_server("picky", "python", tmp_path, wait_ready=False)

    assert server.process.wait(timeout=30) == 1
    (line,) = [line for line in server.logs().splitlines() if "model load failed" in line]
    assert "only real words" in line and "--example" in line
    assert "Traceback" not in server.logs()


def test_uvicorn_http_serves_the_same_protocol(
    iris: IrisModels, start_model_server: StartModelServer
) -> None:
    server = start_model_server("iris", "onnx", iris.onnx_path, "--http", "uvicorn")
    client = triton.InferenceServerClient(server.address)
    try:
        infer_input = triton.InferInput("input", [5, 4], "FP32")
        infer_input.set_data_from_numpy(iris.x[:5])
        result = client.infer("iris", [infer_input])
        np.testing.assert_array_equal(result.as_numpy("label"), iris.clf.predict(iris.x[:5]))
        with httpx.Client(base_url=server.url) as http:
            assert http.post("/v2/models/iris/infer", json={"inputs": 1}).status_code == 400
            assert http.get("/v2/models/nope").status_code == 404
            assert "pier_modelserver_requests_total" in http.get("/metrics").text
    finally:
        client.close()
    code, elapsed_s = _stop_within(server.process, timeout_s=5)
    assert code == 0
    assert elapsed_s < 1.5
