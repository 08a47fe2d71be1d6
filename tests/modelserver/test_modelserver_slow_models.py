"""Models that take time: inference runs on worker threads, never on the event loop.

The model below records each call's entry as a file and then waits for a file named
``go`` (at most a minute; not for the warm-up's zeros), so a test knows which calls are
inside ``predict`` at the same time, and that health probes were answered while they
were, without guessing durations.
"""

from __future__ import annotations

import concurrent.futures
import signal
import time
from pathlib import Path

import httpx
import pytest

from .conftest import ModelServer, StartModelServer

GATE_S = 60.0

GATED_PREDICT = """
import pathlib
import threading
import time
import uuid

import numpy as np

HERE = pathlib.Path(__file__).parent
LOCK = threading.Lock()


class Model:
    inputs = [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}]
    outputs = [
        {"name": "y", "datatype": "FP32", "shape": [-1]},
        {"name": "peak", "datatype": "INT32", "shape": [-1]},
        {"name": "rows", "datatype": "INT32", "shape": [-1]},
    ]

    def load(self):
        self.inside = 0
        self.peak = 0

    def predict(self, inputs):
        x = inputs["x"]
        warm_up = not x.any()  # pier's warm-up call sends zeros
        with LOCK:
            self.inside += 1
            self.peak = max(self.peak, self.inside)
        try:
            if not warm_up:
                (HERE / f"entered-{uuid.uuid4().hex}").touch()
                deadline = time.monotonic() + GATE_S
                while not (HERE / "go").exists() and time.monotonic() < deadline:
                    time.sleep(0.005)
            if (x < 0).any():
                raise ValueError("x must not be negative")
            n = len(x)  # per row: the most calls inside at once, the rows of this call
            return {"y": x.sum(axis=1), "peak": np.full(n, self.peak), "rows": np.full(n, n)}
        finally:
            with LOCK:
                self.inside -= 1
"""


def gated_model(tmp_path: Path, gate_s: float = GATE_S) -> Path:
    directory = tmp_path / "gated"
    directory.mkdir()
    (directory / "model.py").write_text(GATED_PREDICT.replace("GATE_S", repr(gate_s)))
    return directory


def infer_body(rows: list[list[float]]) -> dict[str, object]:
    return {"inputs": [{"name": "x", "datatype": "FP32", "shape": [len(rows), 2], "data": rows}]}


def wait_for(predicate: object, timeout_s: float = 10.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


def entered(directory: Path) -> int:
    return len(list(directory.glob("entered-*")))


def post(server: ModelServer, name: str, body: dict[str, object]) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        return client.post(f"/v2/models/{name}/infer", json=body)


def outputs(response: httpx.Response) -> dict[str, list[float]]:
    assert response.status_code == 200, response.text
    return {out["name"]: out["data"] for out in response.json()["outputs"]}


def test_health_answers_while_predict_runs_and_calls_overlap_up_to_the_pool_size(
    tmp_path: Path, start_model_server: StartModelServer
) -> None:
    directory = gated_model(tmp_path)
    server = start_model_server("slow", "python", directory, "--workers", "2")
    with concurrent.futures.ThreadPoolExecutor(3) as callers:
        calls = [callers.submit(post, server, "slow", infer_body([[i, 1.0]])) for i in range(3)]
        wait_for(lambda: entered(directory) == 2)  # two calls are inside predict()
        with httpx.Client(base_url=server.url, timeout=5.0) as client:
            assert client.get("/v2/health/live").status_code == 200
            assert client.get("/v2/health/ready").status_code == 200
            assert client.get("/v2/models/slow/ready").status_code == 200
            assert client.get("/v2/models/slow").status_code == 200
        assert not (directory / "go").exists()  # answered while predict() still ran
        (directory / "go").touch()
        results = [outputs(call.result()) for call in calls]
    assert [result["y"] for result in results] == [[1.0], [2.0], [3.0]]
    assert max(result["peak"][0] for result in results) == 2  # overlap, within the pool
    assert entered(directory) == 3


def test_requests_past_the_queue_limit_get_503_and_the_server_keeps_serving(
    tmp_path: Path, start_model_server: StartModelServer
) -> None:
    directory = gated_model(tmp_path)
    server = start_model_server("slow", "python", directory, "--workers", "1", "--max-queue", "1")
    with concurrent.futures.ThreadPoolExecutor(1) as callers:
        first = callers.submit(post, server, "slow", infer_body([[1.0, 1.0]]))
        wait_for(lambda: entered(directory) == 1)
        refused = post(server, "slow", infer_body([[2.0, 2.0]]))
        assert refused.status_code == 503
        assert "--max-queue" in refused.json()["error"]
        (directory / "go").touch()
        assert outputs(first.result())["y"] == [2.0]
    assert outputs(post(server, "slow", infer_body([[3.0, 3.0]])))["y"] == [6.0]


def test_sigterm_while_predict_runs_exits_promptly(
    tmp_path: Path, start_model_server: StartModelServer
) -> None:
    directory = gated_model(tmp_path, gate_s=120.0)  # a predict() that would run for minutes
    server = start_model_server("slow", "python", directory)
    with concurrent.futures.ThreadPoolExecutor(1) as callers:
        call = callers.submit(post, server, "slow", infer_body([[1.0, 1.0]]))
        wait_for(lambda: entered(directory) == 1)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=10) == 0
        with pytest.raises(httpx.TransportError):
            call.result()
