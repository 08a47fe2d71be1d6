"""What the SDK sends and how it reads answers: uploads, waiting, logs, gateway calls.

A fake control plane (httpx.MockTransport) answers; the real one is covered by tests/e2e.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest

import pier
from pier.client import NodeProgress
from tests.cli.conftest import FakePier, event_json, instance_json, model_json, node_json

NODES = "/api/v1/projects/default/nodes"
MODEL = model_json()


def test_push_model_sends_the_file_and_its_format_fake_server(
    fake_pier: FakePier, tmp_path: Path
) -> None:
    path = tmp_path / "iris.onnx"
    path.write_bytes(b"onnx" * 1000)
    fake_pier.on("POST", "/api/v1/projects/default/models/iris", httpx.Response(201, json=MODEL))
    seen: list[tuple[int, int]] = []
    with fake_pier.client() as client:
        model = client.push_model(path, "iris", on_progress=lambda s, t: seen.append((s, t)))
    assert model.version == 1
    (request,) = fake_pier.requests
    assert request.url.params["format"] == "onnx"
    assert request.url.params["trust"] == "false"
    assert request.url.params["filename"] == "iris.onnx"
    assert request.headers["content-type"] == "application/octet-stream"
    assert request.headers["content-length"] == "4000"
    assert request.content == path.read_bytes()
    assert seen[0] == (0, 4000) and seen[-1] == (4000, 4000)


def test_push_model_sends_a_directory_as_a_gzip_tar_fake_server(
    fake_pier: FakePier, tmp_path: Path
) -> None:
    model_dir = tmp_path / "echo"
    (model_dir / "pkg" / "__pycache__").mkdir(parents=True)
    (model_dir / "model.py").write_text("class Model: ...\n")
    (model_dir / "pkg" / "util.py").write_text("X = 1\n")
    (model_dir / "pkg" / "__pycache__" / "util.cpython-311.pyc").write_bytes(b"\0")
    fake_pier.on("POST", "/api/v1/projects/default/models/echo", httpx.Response(201, json=MODEL))
    with fake_pier.client() as client:
        client.push_model(model_dir, "echo", trust=True)
    (request,) = fake_pier.requests
    assert request.url.params["format"] == "python"
    assert request.url.params["filename"] == "echo.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(request.content))) as tar:
        names = sorted(tar.getnames())
    assert names == ["model.py", "pkg", "pkg/util.py"]


@pytest.mark.parametrize("suffix", [".joblib", ".pkl", ".pickle"])
def test_push_model_refuses_a_pickle_without_trust_before_uploading_fake_server(
    fake_pier: FakePier, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"tree{suffix}"
    path.write_bytes(b"pickle")
    with fake_pier.client() as client, pytest.raises(pier.InvalidSpec) as caught:
        client.push_model(path, "tree")
    assert caught.value.field == "trust"
    assert "runs code" in caught.value.message
    assert fake_pier.requests == []


def test_push_model_refuses_a_python_model_without_trust_before_uploading_fake_server(
    fake_pier: FakePier, tmp_path: Path
) -> None:
    model_dir = tmp_path / "echo"
    model_dir.mkdir()
    (model_dir / "model.py").write_text("class Model: ...\n")
    with fake_pier.client() as client, pytest.raises(pier.InvalidSpec) as caught:
        client.push_model(model_dir, "echo")
    assert caught.value.field == "trust"
    assert "runs its model.py" in caught.value.message
    assert fake_pier.requests == []


def test_push_model_needs_a_format_it_can_tell(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"?")
    with pier.Client(token="t") as client, pytest.raises(pier.InvalidSpec) as caught:
        client.push_model(path, "thing")
    assert caught.value.field == "format"
    assert "onnx, sklearn, python" in caught.value.message


def node(status: str, **extra: Any) -> dict[str, Any]:
    return node_json(status=status, **{"routed": False, **extra})


def sequence(*answers: dict[str, Any]) -> Any:
    """A handler answering each request with the next of ``answers`` (the last repeats)."""
    remaining = list(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=remaining.pop(0) if len(remaining) > 1 else remaining[0])

    return answer


def test_wait_node_reports_progress_until_healthy_fake_server(fake_pier: FakePier) -> None:
    states = node("Created"), node("Healthy"), node("Healthy", routed=True)
    fake_pier.on("GET", f"{NODES}/iris", sequence(*states))
    preparing = instance_json(status="Preparing")
    fake_pier.on("GET", f"{NODES}/iris/instances", {"instances": [preparing]})
    fake_pier.on("GET", f"{NODES}/iris/events", {"events": [event_json()]})
    progress: list[NodeProgress] = []
    with fake_pier.client() as client:
        final = client.wait_node("iris", timeout_s=5, poll_s=0, on_progress=progress.append)
    assert final.status == "Healthy" and final.routed  # Healthy and in the gateway
    assert [p.node.status for p in progress] == ["Created", "Healthy", "Healthy"]
    assert [[e.id for e in p.new_events] for p in progress] == [[1], [], []]  # reported once


def test_wait_node_times_out_when_the_gateway_never_routes_the_node_fake_server(
    fake_pier: FakePier,
) -> None:
    fake_pier.on("GET", f"{NODES}/iris", node("Healthy", routed=False))
    with fake_pier.client() as client, pytest.raises(pier.WaitTimedOut) as caught:
        client.wait_node("iris", timeout_s=0, poll_s=0)
    assert "did not get routed by the gateway within 0s" in caught.value.message


def test_wait_node_stops_on_a_crash_loop_with_the_reason_fake_server(fake_pier: FakePier) -> None:
    crashing = node("Created", crash_looping=True, message="exit 1: ImportError: no module x")
    fake_pier.on("GET", f"{NODES}/iris", crashing)
    with fake_pier.client() as client, pytest.raises(pier.NodeCrashLooping) as caught:
        client.wait_node("iris", timeout_s=5, poll_s=0)
    assert "crash looping" in caught.value.message
    assert "ImportError: no module x" in caught.value.message


def test_wait_node_times_out_with_the_last_status_fake_server(fake_pier: FakePier) -> None:
    fake_pier.on("GET", f"{NODES}/iris", node("Unhealthy", message="1 of 2 instances Healthy"))
    with fake_pier.client() as client, pytest.raises(pier.WaitTimedOut) as caught:
        client.wait_node("iris", timeout_s=0, poll_s=0)
    assert "Unhealthy" in caught.value.message and "1 of 2" in caught.value.message


def test_wait_node_deleted_returns_once_not_found_fake_server(fake_pier: FakePier) -> None:
    gone = httpx.Response(404, json={"error": {"code": "not_found", "message": "gone"}})
    answers = iter([httpx.Response(200, json=node("Deleting")), gone])
    fake_pier.on("GET", f"{NODES}/iris", lambda request: next(answers))
    with fake_pier.client() as client:
        client.wait_node_deleted("iris", timeout_s=5, poll_s=0)
    assert len(fake_pier.requests) == 2


def test_logs_stream_lines_with_the_asked_options_fake_server(fake_pier: FakePier) -> None:
    text = "[i-1] loading\n[i-1] ready\n"
    fake_pier.on("GET", f"{NODES}/iris/logs", httpx.Response(200, text=text))
    with fake_pier.client() as client:
        lines = list(client.logs("iris", tail=5))
    assert lines == ["[i-1] loading", "[i-1] ready"]
    params = fake_pier.requests[0].url.params
    assert params["follow"] == "false" and params["tail"] == "5" and "instance" not in params


def test_call_goes_to_the_gateway_pier_reports_fake_server(fake_pier: FakePier) -> None:
    info = {"version": "0.1.0", "gateway_url": "http://gw.test/", "runtimes": ["local"]}
    fake_pier.on("GET", "/api/v1/info", info)
    fake_pier.on("POST", "/default/aliases/prod/v2/models/iris/infer", {"outputs": []})
    fake_pier.on("GET", "/default/nodes/iris/", httpx.Response(503, json={"error": {}}))
    with fake_pier.client() as client:
        ok = client.call("alias/prod", "/v2/models/iris/infer", json={"inputs": []})
        refused = client.call("iris")
    assert ok.json() == {"outputs": []}
    assert refused.status_code == 503  # gateway answers come back as they are
    call = fake_pier.requests[1]
    assert str(call.url) == "http://gw.test/default/aliases/prod/v2/models/iris/infer"
    assert call.headers["authorization"] == "Bearer t0ken"
