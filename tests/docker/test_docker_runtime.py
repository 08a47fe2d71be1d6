"""What only the docker runtime promises, against a real engine and the local registry:
images and pinning, names and labels, limits. The shared behaviour (create, list,
adoption, logs, stats, exit codes, delete) is in tests/runtimes/test_runtime_contract.py.

Start both with ``bash scripts/start-docker.sh``. Without an engine the tests are skipped
with the reason, except with CI=true, where that is a failure: `make test` installs it.
Every container made here carries this session's own ``pier.project`` label, and teardown
removes exactly those: other processes may share the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker.errors
import httpx
import pytest
from tests.docker.images import REPOSITORY_PREFIX, build_and_push, missing_prerequisite

from pier.domain.configurations import GIB, Configuration
from pier.domain.errors import InvalidSpec, RuntimeUnavailable
from pier.domain.names import InstanceId, NodeKey, NodeName, ProjectName
from pier.runtimes import InstanceSpec
from pier.runtimes.docker import (
    DockerRuntime,
    EngineFacts,
    ImagePullFailed,
    PullProgress,
    plan_limits,
    probe_engine,
)

MIB = 2**20
PROJECT = ProjectName(f"pt{secrets.token_hex(3)}")
"""This session's project: the label teardown cleans up by."""
NODE_A = NodeKey(PROJECT, NodeName("node-a"))
NODE_B = NodeKey(PROJECT, NodeName("node-b"))
DIGEST_REF = re.compile(rf"^{re.escape(REPOSITORY_PREFIX)}/echo@sha256:[0-9a-f]{{64}}$")


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def engine() -> None:
    """Skip (fail under CI=true) unless an engine, the registry and busybox-static are here."""
    problem = probe_engine() or missing_prerequisite()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"the docker runtime must be testable in CI: {problem}")
    pytest.skip(f"no Docker test setup here ({problem}); run `bash scripts/start-docker.sh`")


@pytest.fixture(scope="session")
def client(engine: None) -> Iterator[docker.DockerClient]:
    """A plain SDK client for acting out of band (docker rm -f, docker exec, inspect)."""
    sdk = docker.from_env()
    yield sdk
    _remove_project_containers(sdk)
    sdk.close()


@pytest.fixture(scope="session")
def echo_image(engine: None) -> str:
    return build_and_push("echo:1")


@pytest.fixture(scope="session")
def pinned_echo(echo_image: str) -> str:
    """The echo image resolved once to its digest, as the controller does per node generation."""

    async def resolve() -> str:
        runtime = DockerRuntime()
        try:
            return await runtime.resolve_image(echo_image)
        finally:
            await runtime.close()

    with ThreadPoolExecutor(1) as pool:  # its own event loop, whatever runs in this thread
        return pool.submit(asyncio.run, resolve()).result()


@pytest.fixture
async def runtime(client: docker.DockerClient) -> AsyncIterator[DockerRuntime]:
    docker_runtime = DockerRuntime()
    yield docker_runtime
    await docker_runtime.close()
    await asyncio.to_thread(_remove_project_containers, client)


def _remove_project_containers(sdk: docker.DockerClient) -> None:
    for container in sdk.containers.list(all=True, filters={"label": f"pier.project={PROJECT}"}):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


# -- helpers -------------------------------------------------------------------------------


def make_spec(
    image: str,
    *,
    instance_id: str | None = None,
    node: NodeKey = NODE_A,
    port: int | None = 8080,
    command: tuple[str, ...] = (),
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    configuration: Configuration | None = None,
    generation: int = 1,
) -> InstanceSpec:
    return InstanceSpec(
        instance_id=InstanceId(instance_id or f"i-{secrets.token_hex(3)}"),
        node=node,
        command=command,
        args=args,
        env=env or {},
        image=image,
        port=port,
        configuration=configuration,
        generation=generation,
    )


async def wait_until(check: Callable[[], Awaitable[Any]], *, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.05)


async def get(url: str) -> httpx.Response | None:
    """GET ``url``; None while nothing answers there yet."""
    async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
        try:
            return await http.get(url)
        except httpx.TransportError:
            return None


async def answer(url: str) -> httpx.Response:
    """The first answer from ``url`` (the server may still be starting)."""
    response: httpx.Response = await wait_until(lambda: get(url))
    return response


# -- images --------------------------------------------------------------------------------


async def test_resolve_image_pins_the_tag_to_a_registry_digest(
    runtime: DockerRuntime, echo_image: str, client: docker.DockerClient
) -> None:
    lines: list[str] = []
    pinned = await runtime.resolve_image(echo_image, on_progress=lines.append)
    assert DIGEST_REF.match(pinned), pinned
    repo_digests = client.images.get(echo_image).attrs["RepoDigests"]
    assert f"{REPOSITORY_PREFIX}/echo@{pinned.partition('@')[2]}" in repo_digests
    assert lines and all(line.startswith(f"pulling {echo_image}: ") for line in lines)
    assert await runtime.resolve_image(pinned) == pinned


async def test_different_image_versions_get_different_digests(
    runtime: DockerRuntime, pinned_echo: str
) -> None:
    other = await runtime.resolve_image(build_and_push("echo:2"))
    assert DIGEST_REF.match(other) and other != pinned_echo


async def test_missing_image_fails_with_the_registry_message(runtime: DockerRuntime) -> None:
    ref = f"{REPOSITORY_PREFIX}/no-such-image:1"
    with pytest.raises(ImagePullFailed, match="manifest unknown") as caught:
        await runtime.resolve_image(ref)
    assert caught.value.image == ref and ref in caught.value.message


async def test_unreachable_registry_fails_with_the_engine_message(runtime: DockerRuntime) -> None:
    with pytest.raises(ImagePullFailed, match="connection refused"):
        await runtime.resolve_image("127.0.0.1:1/pier-test/echo:1")


async def test_a_local_only_image_is_pinned_by_its_id(
    runtime: DockerRuntime, echo_image: str, client: docker.DockerClient
) -> None:
    image = client.images.get(echo_image)
    local_ref = f"pier-test-local-{PROJECT}/echo:1"
    image.tag(local_ref)
    try:
        assert await runtime.resolve_image(local_ref) == image.id
    finally:
        client.images.remove(local_ref)


def test_pull_progress_says_a_few_lines_per_stage() -> None:
    lines: list[str] = []
    progress = PullProgress("r:1", lines.append)
    layer = {"progressDetail": {}}
    for item in (
        {"status": "Pulling from r", "id": "1"},
        {**layer, "status": "Already exists", "id": "a"},
        {**layer, "status": "Pulling fs layer", "id": "b"},
        {**layer, "status": "Downloading", "id": "b", "progress": "[=>  ]"},
        {**layer, "status": "Downloading", "id": "b", "progress": "[==> ]"},
        {**layer, "status": "Download complete", "id": "b"},
        {**layer, "status": "Extracting", "id": "b"},
        {**layer, "status": "Pull complete", "id": "b"},
        {"status": "Digest: sha256:0123"},
    ):
        progress.update(item)
    assert lines == [
        "pulling r:1: Pulling from r",
        "pulling r:1: Downloading 1/2 layers",
        "pulling r:1: Extracting 1/2 layers",
        "pulling r:1: Pulled 2/2 layers",
        "pulling r:1: Digest: sha256:0123",
    ]


# -- create ----------------------------------------------------------------------------------


async def test_the_test_image_echoes_method_path_and_query(
    runtime: DockerRuntime, pinned_echo: str
) -> None:
    seen = await runtime.create(make_spec(pinned_echo))
    assert seen.phase == "running"
    assert seen.endpoint is not None and seen.endpoint.startswith("http://127.0.0.1:")
    response = await answer(f"{seen.endpoint}/cgi-bin/echo/some/path?x=1")
    assert response.status_code == 200
    body = response.json()
    assert (body["method"], body["path"], body["query"]) == ("GET", "/cgi-bin/echo/some/path",
                                                             "x=1")  # fmt: skip
    assert body["version"] == "1"


async def test_container_is_named_labelled_and_published_on_localhost_only(
    runtime: DockerRuntime, pinned_echo: str, client: docker.DockerClient
) -> None:
    spec = make_spec(pinned_echo, generation=3)
    await runtime.create(spec)
    attrs = client.containers.get(f"pier-{spec.instance_id}").attrs
    expected = {
        "pier.managed": "true",
        "pier.project": PROJECT,
        "pier.node": "node-a",
        "pier.instance": spec.instance_id,
        "pier.generation": "3",
    }
    assert attrs["Config"]["Labels"].items() >= expected.items()
    assert attrs["HostConfig"]["Init"] is True
    assert attrs["Config"]["Image"] == pinned_echo
    bindings = attrs["NetworkSettings"]["Ports"]["8080/tcp"]
    assert bindings and {b["HostIp"] for b in bindings} == {"127.0.0.1"}


async def test_container_removed_out_of_band_disappears_from_list(
    runtime: DockerRuntime, pinned_echo: str, client: docker.DockerClient
) -> None:
    seen = await runtime.create(make_spec(pinned_echo))
    await asyncio.to_thread(client.containers.get(f"pier-{seen.instance_id}").remove, force=True)
    assert seen.instance_id not in {o.instance_id for o in await runtime.list()}
    await runtime.delete(seen.instance_id, grace_s=1)


async def test_env_args_and_port_reach_the_container(
    runtime: DockerRuntime, pinned_echo: str
) -> None:
    spec = make_spec(pinned_echo, port=9090, args=("start-server", "{port}"),
                     env={"GREETING": "hello world"})  # fmt: skip
    seen = await runtime.create(spec)
    response = await answer(f"{seen.endpoint}/cgi-bin/env")
    env = dict(line.split("=", 1) for line in response.text.splitlines())
    assert env["GREETING"] == "hello world"
    assert env["PIER_PORT"] == "9090"


async def test_image_without_an_image_is_invalid(runtime: DockerRuntime) -> None:
    spec = InstanceSpec(instance_id=InstanceId("no-image"), node=NODE_A, command=())
    with pytest.raises(InvalidSpec, match="image"):
        await runtime.create(spec)


# -- limits --------------------------------------------------------------------------------


async def test_configuration_limits_are_visible_in_inspect(
    runtime: DockerRuntime, pinned_echo: str, client: docker.DockerClient
) -> None:
    small = Configuration(name="t1", vcpu=1, memory_bytes=64 * MIB)
    seen = await runtime.create(make_spec(pinned_echo, configuration=small))
    host_config = client.containers.get(f"pier-{seen.instance_id}").attrs["HostConfig"]
    assert (host_config["NanoCpus"], host_config["Memory"]) == (10**9, 64 * MIB)
    assert seen.limits_applied == ("cpus=1 (NanoCpus)", "memory=64 MiB (Memory)")
    assert seen.limits_not_applied == ()
    assert (await runtime.list(node=NODE_A))[0].limits_applied == seen.limits_applied


async def test_limits_over_the_host_are_capped_and_reported(
    runtime: DockerRuntime, pinned_echo: str, client: docker.DockerClient
) -> None:
    info = client.info()
    huge = Configuration(name="t2", vcpu=4096, memory_bytes=4096 * GIB, gpus=1)
    seen = await runtime.create(make_spec(pinned_echo, configuration=huge))
    host_config = client.containers.get(f"pier-{seen.instance_id}").attrs["HostConfig"]
    assert host_config["NanoCpus"] == info["NCPU"] * 10**9
    assert host_config["Memory"] == info["MemTotal"]
    not_applied = " | ".join(seen.limits_not_applied)
    assert f"vcpu=4096: capped at the Docker host's {info['NCPU']} CPUs" in not_applied
    assert "memory=4096 GiB: capped at the Docker host's" in not_applied
    if "nvidia" not in (info.get("Runtimes") or {}):
        assert "gpus=1: not applied: the Docker engine has no GPU runtime" in not_applied


def test_gpus_become_device_requests_when_the_engine_has_a_gpu_runtime() -> None:
    gpu = Configuration(name="g", vcpu=2, memory_bytes=GIB, gpus=2)
    plan = plan_limits(gpu, EngineFacts(cpus=8, memory_bytes=16 * GIB, has_gpu_runtime=True))
    (request,) = plan.host_config()["device_requests"]
    assert (request["Count"], request["Capabilities"]) == (2, [["gpu"]])
    assert plan.not_applied == ()


# -- the test image's contract -------------------------------------------------------------


async def test_the_health_switch_of_the_test_image(
    runtime: DockerRuntime, pinned_echo: str, client: docker.DockerClient
) -> None:
    seen = await runtime.create(make_spec(pinned_echo))
    url = seen.endpoint
    assert (await answer(f"{url}/healthz")).status_code == 200
    container = client.containers.get(f"pier-{seen.instance_id}")
    assert container.exec_run(["set-health", "fail"]).exit_code == 0
    assert [(await get(f"{url}{p}")).status_code for p in ("/healthz", "/cgi-bin/healthz")] == [
        404,
        500,
    ]
    assert (await get(f"{url}/cgi-bin/set-health?ok")).status_code == 200
    assert (await get(f"{url}/cgi-bin/healthz")).status_code == 200
    metrics = (await get(f"{url}/metrics")).text
    assert 'testimage_up{version="1"} 1' in metrics


# -- no engine -----------------------------------------------------------------------------


def test_no_engine_is_reported_with_what_to_do() -> None:
    message = probe_engine("unix:///nonexistent/docker.sock")
    assert message is not None
    assert message.startswith("no Docker engine at unix:///nonexistent/docker.sock (")
    assert message.endswith("start one (e.g. `dockerd &`)")
    with pytest.raises(RuntimeUnavailable, match="no Docker engine at unix:///nonexistent"):
        DockerRuntime(docker_host="unix:///nonexistent/docker.sock")
