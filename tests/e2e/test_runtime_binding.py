"""A node runs only on the runtime it was created on: an image node never falls back to the
local runtime when no Docker engine answers, and starts again once the engine is back."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from pier.controller.loop import Controller
from pier.controller.routes import RouteBoard
from pier.domain.errors import InvalidSpec, RuntimeUnavailable
from pier.domain.specs import ModelFormat
from pier.runtimes.base import Runtime
from pier.runtimes.docker import DockerRuntime, probe_engine
from pier.runtimes.local import LocalRuntime
from pier.runtimes.registry import RuntimeRegistry
from pier.services.nodes import NodeService
from pier.settings import ControllerSettings
from pier.store import Repository, create_store_engine, migrate
from tests.conftest import IrisModel, PierProcess

UNREACHABLE_ENGINE = "unix:///nonexistent/docker.sock"


def marker_processes(marker: str) -> list[str]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if marker in cmdline:
            found.append(cmdline)
    return found


def test_image_node_waits_for_docker_instead_of_running_on_the_host(
    pier_factory: Callable[..., PierProcess], echo_image: str
) -> None:
    marker = f"pier-marker-{secrets.token_hex(4)}"
    env = {"PIER_SECRET_PROBE": "xyz"}
    pier = pier_factory("data", env=env)
    # In the image: the echo server. On the host (a fallback): a shell that stays, with the
    # marker in its command line.
    command = (
        "sh -c 'if command -v start-server >/dev/null; then exec start-server; fi; sleep 600' "
        + marker
    )
    pier.cli(
        "node", "create", "web", "--image", echo_image, "--port", "8080",
        "--health", "/healthz", "--health-interval", "0.5", "--command", command, "--wait",
    )  # fmt: skip
    assert pier.node("web")["runtime"] == "docker"
    with pier.gateway() as gw:
        shown = gw.get("/default/nodes/web/cgi-bin/env").text
    assert "PIER_NODE=web" in shown and "PIER_SECRET_PROBE" not in shown  # spec env only
    before_restart = pier.events("web")[-1]["id"]
    pier.stop()

    restarted = pier_factory("data", start=False, env={**env, "DOCKER_HOST": UNREACHABLE_ENGINE})
    restarted.start()

    def unavailable() -> bool:
        return any(e["kind"] == "runtime_unavailable" for e in restarted.events("web"))

    restarted.wait_for(unavailable, what="the runtime_unavailable event")
    node = restarted.node("web")
    assert "runtime docker is unavailable" in node["message"], node
    assert UNREACHABLE_ENGINE in node["message"]
    assert node["status"] != "Healthy" and node["instances"]["total"] == 0
    assert restarted.instances("web") == []
    since = [e["kind"] for e in restarted.events("web") if e["id"] > before_restart]
    assert "instance_created" not in since, since
    assert list((restarted.data_dir / "instances").glob("*.json")) == []
    assert marker_processes(marker) == []


def test_runtime_docker_refuses_to_start_without_an_engine(
    pier_factory: Callable[..., PierProcess],
) -> None:
    pier = pier_factory("data", start=False, env={"DOCKER_HOST": UNREACHABLE_ENGINE})
    argv = [
        sys.executable, "-m", "pier", "up", "--runtime", "docker", "--port", str(pier.port),
        "--gateway-port", str(pier.gateway_port), "--data-dir", str(pier.data_dir),
    ]  # fmt: skip

    refused = subprocess.run(argv, env=pier.env, capture_output=True, text=True, timeout=60)

    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"error: no Docker engine at {UNREACHABLE_ENGINE}" in refused.stderr
    assert "--runtime docker needs it at start-up" in refused.stderr
    pier.start()  # without --runtime docker the same machine starts: Docker is optional
    assert "local" in pier.cli("info").stdout


def test_runtime_docker_moves_no_model_node_off_the_local_runtime(
    pier_factory: Callable[..., PierProcess], iris_onnx: IrisModel, echo_image: str
) -> None:
    pier = pier_factory("data", env={"PIER_RUNTIME": "docker"})
    pier.cli("model", "push", str(iris_onnx.path), "--name", "iris")
    pier.cli("node", "create", "iris", "--model", "iris", "--min", "0")
    pier.cli("node", "create", "web", "--image", echo_image, "--port", "8080", "--min", "0")

    assert (pier.node("iris")["runtime"], pier.node("web")["runtime"]) == ("local", "docker")


async def test_node_starts_on_its_runtime_once_the_registry_loads_it(
    tmp_path: Path, echo_image: str
) -> None:
    """In process: the registry's docker entry appears after start-up (the engine was
    unreachable, then answers); the controller adopts and starts the node there."""
    engine = create_store_engine(f"sqlite:///{tmp_path / 'pier.db'}")
    migrate(engine)
    repo = Repository(engine)
    repo.ensure_default_project()
    docker_host = [UNREACHABLE_ENGINE]
    installation = f"t{secrets.token_hex(4)}"
    local = LocalRuntime(tmp_path / "instances")

    def docker() -> Runtime:
        problem = probe_engine(docker_host[0])
        if problem is not None:
            raise RuntimeUnavailable(problem)
        return DockerRuntime(installation=installation)

    registry = RuntimeRegistry(
        {"local": lambda: local, "docker": docker}, retry_base_s=0.2, retry_max_s=0.4
    )
    registry.load()
    assert list(registry) == ["local"]
    spec = {"image": echo_image, "port": 8080, "health": {"path": "/healthz", "interval_s": 0.3}}
    NodeService(repo).create("default", "web", spec, actor="test")
    controller = Controller(
        repo, registry, settings=ControllerSettings(tick_s=0.1),
        models_dir=tmp_path / "models", board=RouteBoard(),
    )  # fmt: skip
    await controller.start()
    try:
        await wait_for(lambda: _kinds(repo).count("runtime_unavailable") == 1)
        assert "runtime docker is unavailable" in (repo.get_node("default", "web").message or "")
        assert repo.list_instances() == [] and await local.list() == []

        docker_host[0] = None  # the engine answers from now on
        await wait_for(lambda: "runtime_available" in _kinds(repo))
        await wait_for(
            lambda: (
                [(i.runtime, i.status.value) for i in repo.list_instances()]
                == [("docker", "Healthy")]
            )
        )
        assert repo.get_node("default", "web").message is None
        assert await local.list() == []
    finally:
        await controller.stop(stop_instances=True)
        for runtime in registry.values():
            await runtime.close()
        engine.dispose()


def test_an_update_cannot_move_a_node_to_another_runtime(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'pier.db'}")
    migrate(engine)
    repo = Repository(engine)
    repo.ensure_default_project()
    repo.add_model("default", "iris", fmt=ModelFormat.ONNX, sha256="0" * 64, size_bytes=1,
                   metadata={})  # fmt: skip
    nodes = NodeService(repo)
    assert nodes.create("default", "iris", {"model": "iris"}, actor="test").runtime == "local"
    with pytest.raises(InvalidSpec) as caught:
        nodes.update("default", "iris", {"image": "127.0.0.1:5000/ms:1"}, actor="test")
    assert caught.value.field == "image"
    assert "runs on the local runtime" in caught.value.message
    assert repo.get_node("default", "iris").spec.image is None
    engine.dispose()


def _kinds(repo: Repository) -> list[str]:
    return [e.kind for e in repo.list_events("default", "web")]


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)
