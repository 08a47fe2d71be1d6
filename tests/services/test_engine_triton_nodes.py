"""Creating an engine triton node where no tritonserver is installed is refused naming
engine, with the installer's hint; a Triton model directory needs engine triton. On a
real SQLite store; the refusal is the one `pier up` wires (no tritonserver found). In a
Triton image, the image's tritonserver runs: no local one is needed."""

from __future__ import annotations

import pytest

from pier.domain.errors import InvalidSpec
from pier.domain.specs import Engine, ModelFormat
from pier.modelserver.triton.distribution import TritonNotInstalled
from pier.services.nodes import NodeService
from pier.store.repository import Repository


@pytest.fixture
def repo(repo: Repository) -> Repository:
    for name, fmt in (("iris", ModelFormat.ONNX), ("add_sub", ModelFormat.TRITON)):
        repo.add_model("default", name, fmt=fmt, sha256=name * 8, size_bytes=1, metadata={})
    return repo


def test_engine_triton_without_tritonserver_is_refused_naming_engine(repo: Repository) -> None:
    nodes = NodeService(repo, triton_refusal=lambda: str(TritonNotInstalled()))
    with pytest.raises(InvalidSpec) as refused:
        nodes.create("default", "iris", {"model": "iris", "engine": "triton"}, actor="admin")
    assert refused.value.field == "engine" and "nvidia-pytriton" in refused.value.message
    assert repo.list_nodes("default") == []
    nodes.create("default", "iris", {"model": "iris"}, actor="admin")  # pier's engine runs


def test_a_triton_model_directory_needs_engine_triton(repo: Repository) -> None:
    nodes = NodeService(repo)
    with pytest.raises(InvalidSpec) as refused:
        nodes.create("default", "add-sub", {"model": "add_sub"}, actor="admin")
    assert refused.value.field == "engine"
    nodes.create("default", "add-sub", {"model": "add_sub", "engine": "triton"}, actor="admin")


def test_engine_triton_in_an_image_needs_no_local_tritonserver(repo: Repository) -> None:
    nodes = NodeService(repo, triton_refusal=lambda: str(TritonNotInstalled()))
    image = "127.0.0.1:5000/pier-test/triton:1"
    spec = {"model": "iris", "engine": "triton", "image": image}
    created = nodes.create("default", "iris", spec, actor="admin")
    assert created.spec.engine is Engine.TRITON
