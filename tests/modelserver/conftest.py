"""Fixtures for the model server: real models on disk and real server processes.

``start_model_server`` starts ``python -m pier.modelserver`` on a free port (``--port
0``; the port is read from the ``model server listening`` log line) and, by default,
waits until ``/v2/health/ready`` answers 200. Every process is stopped at teardown.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

STARTUP_TIMEOUT_S = 30.0
_PORT = re.compile(r"model server listening .*port=(\d+)")


@dataclass
class IrisModels:
    """A LogisticRegression trained on iris, saved as ONNX and with joblib."""

    x: np.ndarray
    clf: object
    onnx_path: Path
    joblib_path: Path


@pytest.fixture(scope="session")
def iris(tmp_path_factory: pytest.TempPathFactory) -> IrisModels:
    import joblib
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    clf = LogisticRegression(max_iter=500).fit(x, y)
    directory = tmp_path_factory.mktemp("iris")
    onnx_model = convert_sklearn(
        clf,
        initial_types=[("input", FloatTensorType([None, 4]))],
        options={id(clf): {"zipmap": False}},
    )
    onnx_path = directory / "iris.onnx"
    onnx_path.write_bytes(onnx_model.SerializeToString())
    joblib_path = directory / "iris.joblib"
    joblib.dump(clf, joblib_path)
    return IrisModels(x=x, clf=clf, onnx_path=onnx_path, joblib_path=joblib_path)


@dataclass
class ModelServer:
    process: subprocess.Popen[bytes]
    stderr_path: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        """host:port, as tritonclient wants it."""
        return f"127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"model server exited early:\n{self.logs()}")
                try:
                    if client.get("/v2/health/ready").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
        raise AssertionError(f"model server not ready after {timeout_s} s:\n{self.logs()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


StartModelServer = Callable[..., ModelServer]


@pytest.fixture
def start_model_server(tmp_path: Path) -> Iterator[StartModelServer]:
    """Factory: start(name, fmt, path, *extra_args, wait_ready=True, prefix=()) ->
    ModelServer; ``prefix``: what runs the server (e.g. ``taskset -c 0``)."""
    servers: list[ModelServer] = []

    def start(
        name: str,
        fmt: str,
        path: Path,
        *extra_args: str,
        wait_ready: bool = True,
        prefix: tuple[str, ...] = (),
    ) -> ModelServer:
        log_path = tmp_path / f"server-{len(servers)}.log"
        server = _launch(log_path, name, fmt, path, extra_args, prefix)
        servers.append(server)
        if wait_ready:
            server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def iris_server(
    iris: IrisModels, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModelServer]:
    """One ready server of the iris ONNX model, shared by a module's tests."""
    log_path = tmp_path_factory.mktemp("iris-server") / "server.log"
    server = _launch(log_path, "iris", "onnx", iris.onnx_path, ())
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session", autouse=True)
def sklearn_server(
    iris: IrisModels, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModelServer]:
    """A server of the iris joblib model, started when the session starts.

    Importing scikit-learn makes this server take seconds to become ready, so it
    starts first and loads while the other tests run; its test waits for it.
    """
    log_path = tmp_path_factory.mktemp("sklearn-server") / "server.log"
    server = _launch(log_path, "iris-sk", "sklearn", iris.joblib_path, ())
    try:
        yield server
    finally:
        server.stop()


def _launch(
    log_path: Path,
    name: str,
    fmt: str,
    path: Path,
    extra_args: tuple[str, ...],
    prefix: tuple[str, ...] = (),
) -> ModelServer:
    command = [*prefix, sys.executable, "-m", "pier.modelserver", "--name", name]
    command += ["--format", fmt]
    command += ["--path", str(path), "--port", "0", *extra_args]
    with log_path.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        match = _PORT.search(log_path.read_text(errors="replace"))
        if match:
            return ModelServer(process, log_path, int(match.group(1)))
        if process.poll() is not None:
            break
        time.sleep(0.01)
    process.kill()
    process.wait()
    raise AssertionError(f"model server did not start:\n{log_path.read_text(errors='replace')}")
