"""The Runtime contract: one suite, run against every runtime (kopf's ALL_STORAGES idea).

Each runtime under test is a Harness: how to build the runtime, and how to run the same
instance on it: an HTTP server, or a shell script (local: ``sh -c``; docker: ``sh -c`` in
tests/images/echo, the busybox test image). Add a runtime by adding a Harness for it to
HARNESSES. A runtime whose engine is absent is skipped with the reason, except with
CI=true, where it fails: `make test` installs it. What one runtime alone promises is
tested in its own file (tests/runtimes/test_local_runtime.py, tests/docker/).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import docker
import psutil
import pytest
from tests.docker.images import build_and_push, missing_prerequisite
from tests.runtimes.observing import (
    http_get,
    is_gone,
    read_logs,
    wait_for_log,
    wait_for_phase,
    wait_until,
)

from pier.domain.configurations import Configuration
from pier.domain.errors import InvalidSpec, NotFound, RuntimeUnavailable
from pier.domain.names import InstanceId, NodeKey, NodeName, ProjectName
from pier.runtimes import InstanceSpec, Observed, Runtime, load_runtime

MIB = 2**20
NODE_A = NodeKey(ProjectName("default"), NodeName("node-a"))
NODE_B = NodeKey(ProjectName("default"), NodeName("node-b"))
SLEEPER = "echo up; exec sleep 120"


@dataclass
class Harness:
    """One runtime under test: opens runtime objects on the same state, like a restarted
    pier, and says how to run the instances of the suite on it."""

    tmp_path: Path
    opened: list[Runtime] = field(default_factory=list)
    name: ClassVar[str]
    server_banner: ClassVar[str]
    """A line the HTTP server logs once it listens."""
    ok_path: ClassVar[str]
    """A path the HTTP server answers 200 on."""

    @property
    def host(self) -> str:
        """The address instance endpoints are on."""
        return "127.0.0.1"

    def problem(self) -> str | None:
        """Why this runtime cannot be tested here, or None."""
        return None

    def kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def open(self) -> Runtime:
        try:
            problem = self.problem()
            if problem is not None:
                raise RuntimeUnavailable(problem)
            runtime = load_runtime(self.name, **self.kwargs())
        except RuntimeUnavailable as e:
            if os.environ.get("CI") == "true":
                pytest.fail(f"runtime {self.name!r} must be available in CI: {e.message}")
            pytest.skip(f"runtime {self.name!r} is not available here: {e.message}")
        self.opened.append(runtime)
        return runtime

    def server(
        self, instance_id: str, *, node: NodeKey = NODE_A, generation: int = 1
    ) -> InstanceSpec:
        """An HTTP server that logs each request's path."""
        raise NotImplementedError

    def shell(
        self,
        instance_id: str,
        script: str,
        *args: str,
        node: NodeKey = NODE_A,
        configuration: Configuration | None = None,
        env: dict[str, str] | None = None,
    ) -> InstanceSpec:
        """``sh -c script sh args...`` (``{port}`` in args: the instance's port)."""
        raise NotImplementedError

    def pid_of(self, instance_id: str) -> int:
        """The host pid of the instance's main process."""
        raise NotImplementedError

    def names_of(self, instance_id: str) -> tuple[int | None, str | None]:
        """The (pid, container_id) an Observed of this instance carries."""
        raise NotImplementedError

    def port_inside(self, observed: Observed) -> str:
        """The port the instance itself listens on (``{port}``, PIER_PORT)."""
        raise NotImplementedError


class LocalHarness(Harness):
    name = "local"
    server_banner = "Serving HTTP"
    ok_path = "/"

    def kwargs(self) -> dict[str, Any]:
        return {"state_dir": self.tmp_path / "instances"}

    def server(
        self, instance_id: str, *, node: NodeKey = NODE_A, generation: int = 1
    ) -> InstanceSpec:
        command = (sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1")
        return InstanceSpec(
            InstanceId(instance_id), node, command, env={"PYTHONUNBUFFERED": "1"},
            generation=generation,
        )  # fmt: skip

    def shell(
        self,
        instance_id: str,
        script: str,
        *args: str,
        node: NodeKey = NODE_A,
        configuration: Configuration | None = None,
        env: dict[str, str] | None = None,
    ) -> InstanceSpec:
        command = ("sh", "-c", script, "sh", *args)
        return InstanceSpec(
            InstanceId(instance_id), node, command, env=env or {}, configuration=configuration
        )

    def pid_of(self, instance_id: str) -> int:
        state = json.loads((self.tmp_path / "instances" / f"{instance_id}.json").read_text())
        return int(state["pid"])

    def names_of(self, instance_id: str) -> tuple[int | None, str | None]:
        return self.pid_of(instance_id), None

    def port_inside(self, observed: Observed) -> str:
        assert observed.endpoint is not None
        return observed.endpoint.rsplit(":", 1)[1]


class DockerHarness(Harness):
    name = "docker"
    server_banner = "listening on :8080"
    ok_path = "/healthz"
    port: ClassVar[int] = 8080

    def problem(self) -> str | None:
        from pier.runtimes.docker import probe_engine

        return probe_engine() or missing_prerequisite()

    def kwargs(self) -> dict[str, Any]:
        """An installation of this test's own: list() sees no other test's containers."""
        digest = hashlib.sha256(str(self.tmp_path).encode()).hexdigest()[:12]
        return {"installation": f"contract-{digest}"}

    def server(
        self, instance_id: str, *, node: NodeKey = NODE_A, generation: int = 1
    ) -> InstanceSpec:
        return InstanceSpec(
            InstanceId(instance_id), node, (), image=build_and_push("echo:1"), port=self.port,
            generation=generation,
        )  # fmt: skip

    def shell(
        self,
        instance_id: str,
        script: str,
        *args: str,
        node: NodeKey = NODE_A,
        configuration: Configuration | None = None,
        env: dict[str, str] | None = None,
    ) -> InstanceSpec:
        return InstanceSpec(
            InstanceId(instance_id), node, ("sh", "-c", script, "sh", *args),
            env=env or {}, configuration=configuration, image=build_and_push("echo:1"),
            port=self.port if args else None,
        )  # fmt: skip

    def _inspect(self, instance_id: str) -> dict[str, Any]:
        client = docker.from_env()
        try:
            info: dict[str, Any] = client.api.inspect_container(f"pier-{instance_id}")
        finally:
            client.close()
        return info

    def pid_of(self, instance_id: str) -> int:
        return int(self._inspect(instance_id)["State"]["Pid"])

    def names_of(self, instance_id: str) -> tuple[int | None, str | None]:
        return None, str(self._inspect(instance_id)["Id"])

    def port_inside(self, observed: Observed) -> str:
        return str(self.port)


class SwarmHarness(DockerHarness):
    """The session's own two-machine swarm (tests/swarm/cluster.py). The suite's instances
    run on the manager's machine (a placement constraint), where the manager's engine can
    read their stats; spreading over machines is tested in tests/swarm/. A task stops with
    the grace its service was made with: 0.5 s here, the shortest grace the suite asks."""

    name = "swarm"
    cluster: Any = None

    def problem(self) -> str | None:
        return missing_prerequisite()

    def kwargs(self) -> dict[str, Any]:
        return {**super().kwargs(), "docker_host": self.cluster.docker_host, "stop_grace_s": 0.5}

    @property
    def host(self) -> str:
        return str(self.cluster.manager_address)

    def server(
        self, instance_id: str, *, node: NodeKey = NODE_A, generation: int = 1
    ) -> InstanceSpec:
        return self._on_manager(super().server(instance_id, node=node, generation=generation))

    def shell(
        self,
        instance_id: str,
        script: str,
        *args: str,
        node: NodeKey = NODE_A,
        configuration: Configuration | None = None,
        env: dict[str, str] | None = None,
    ) -> InstanceSpec:
        spec = super().shell(
            instance_id, script, *args, node=node, configuration=configuration, env=env
        )
        return self._on_manager(spec)

    def _on_manager(self, spec: InstanceSpec) -> InstanceSpec:
        return dataclasses.replace(spec, placement=("node.role==manager",))

    def _task_status(self, instance_id: str) -> dict[str, Any]:
        client = docker.DockerClient(base_url=self.cluster.docker_host)
        try:
            [task] = client.api.tasks(filters={"service": f"pier-{instance_id}"})
        finally:
            client.close()
        status: dict[str, Any] = task["Status"]["ContainerStatus"]
        return status

    def pid_of(self, instance_id: str) -> int:
        return int(self._task_status(instance_id)["PID"])

    def names_of(self, instance_id: str) -> tuple[int | None, str | None]:
        return None, str(self._task_status(instance_id)["ContainerID"])


HARNESSES: dict[str, type[Harness]] = {
    "local": LocalHarness, "docker": DockerHarness, "swarm": SwarmHarness,
}  # fmt: skip


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = HARNESSES[request.param](tmp_path)
    if isinstance(harness, SwarmHarness):
        harness.cluster = request.getfixturevalue("swarm_cluster")
    yield harness
    if harness.opened:
        cleaner = harness.opened[0]
        for seen in await cleaner.list():
            await cleaner.delete(seen.instance_id, grace_s=1.0)
    for runtime in harness.opened:
        await runtime.close()


@pytest.fixture
def runtime(harness: Harness) -> Runtime:
    return harness.open()


async def test_created_instance_answers_http_on_its_endpoint(
    harness: Harness, runtime: Runtime
) -> None:
    observed = await runtime.create(harness.server("i-http"))

    assert observed.phase == "running"
    assert observed.node == NODE_A
    assert observed.endpoint is not None
    assert observed.endpoint.startswith(f"http://{harness.host}:")
    response = await http_get(f"{observed.endpoint}{harness.ok_path}")
    assert response.status_code == 200


async def test_creating_a_running_instance_again_returns_it(
    harness: Harness, runtime: Runtime
) -> None:
    spec = harness.shell("i-again", SLEEPER)
    first = await runtime.create(spec)

    assert await runtime.create(spec) == first
    assert [o.instance_id for o in await runtime.list()] == ["i-again"]


async def test_port_reaches_the_command_in_argv_and_env(harness: Harness, runtime: Runtime) -> None:
    script = 'echo "$1 $PIER_PORT $GREETING"; exec sleep 120'
    spec = harness.shell("i-port", script, "{port}", env={"GREETING": "hello world"})
    observed = await runtime.create(spec)

    assert observed.endpoint is not None
    port = harness.port_inside(observed)
    assert f"{port} {port} hello world" in await wait_for_log(runtime, "i-port", "hello")


async def test_list_filters_by_node(harness: Harness, runtime: Runtime) -> None:
    await runtime.create(harness.shell("i-a", SLEEPER, node=NODE_A))
    await runtime.create(harness.shell("i-b", SLEEPER, node=NODE_B))

    assert [o.instance_id for o in await runtime.list(node=NODE_A)] == ["i-a"]
    assert [o.instance_id for o in await runtime.list(node=NODE_B)] == ["i-b"]
    assert sorted(o.instance_id for o in await runtime.list()) == ["i-a", "i-b"]


async def test_logs_give_the_output_and_tail_gives_the_last_lines(
    harness: Harness, runtime: Runtime
) -> None:
    await runtime.create(harness.shell("i-lines", "for i in 1 2 3 4 5; do echo line $i; done"))
    await wait_for_phase(runtime, "i-lines", "exited")

    assert await read_logs(runtime, "i-lines") == [f"line {i}" for i in range(1, 6)]
    assert await read_logs(runtime, "i-lines", tail=2) == ["line 4", "line 5"]


async def test_follow_yields_new_lines_until_the_instance_is_deleted(
    harness: Harness, runtime: Runtime
) -> None:
    observed = await runtime.create(harness.server("i-follow"))
    await wait_for_log(runtime, "i-follow", harness.server_banner)
    followed: list[str] = []

    async def follow() -> None:
        async for line in runtime.logs(InstanceId("i-follow"), follow=True, tail=1):
            followed.append(line)

    task = asyncio.create_task(follow())

    async def following() -> bool:  # the tail line came: the follow is under way
        return bool(followed)

    await wait_until(following)
    await http_get(f"{observed.endpoint}/followed-path")

    async def request_logged() -> bool:
        return any("/followed-path" in line for line in followed)

    await wait_until(request_logged)
    await runtime.delete(InstanceId("i-follow"), grace_s=2.0)
    await asyncio.wait_for(task, timeout=10.0)
    assert harness.server_banner in followed[0]


async def test_logs_of_an_unknown_instance_raise_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFound):
        await read_logs(runtime, "i-never-created")


async def test_a_new_runtime_adopts_running_instances(harness: Harness) -> None:
    first = harness.open()
    created = await first.create(harness.server("i-adopted", generation=2))
    other = await first.create(harness.shell("i-other", SLEEPER, node=NODE_B))
    await http_get(f"{created.endpoint}{harness.ok_path}")
    await first.close()

    second = harness.open()
    [adopted] = await second.list(node=NODE_A)

    assert adopted == created
    assert (adopted.phase, adopted.generation) == ("running", 2)
    assert await second.list(node=NODE_B) == [other]
    assert (await http_get(f"{adopted.endpoint}{harness.ok_path}")).status_code == 200


async def test_a_killed_process_reads_exited(harness: Harness, runtime: Runtime) -> None:
    await runtime.create(harness.shell("i-killed", SLEEPER))
    os.kill(harness.pid_of("i-killed"), signal.SIGKILL)

    observed = await wait_for_phase(runtime, "i-killed", "exited")

    assert observed.exit_code == 128 + signal.SIGKILL
    assert [o.instance_id for o in await runtime.list()] == ["i-killed"], "kept until deleted"


async def test_observed_names_the_instance_to_act_on(harness: Harness, runtime: Runtime) -> None:
    created = await runtime.create(harness.shell("i-named", SLEEPER))
    [listed] = await runtime.list()

    assert (created.pid, created.container_id) == harness.names_of("i-named")
    assert (listed.pid, listed.container_id) == harness.names_of("i-named")


async def test_the_exit_code_of_an_instance_is_reported(harness: Harness, runtime: Runtime) -> None:
    await runtime.create(harness.shell("i-exit", "echo bye; exit 3"))

    exited = await wait_for_phase(runtime, "i-exit", "exited")

    assert exited.exit_code == 3
    assert await read_logs(runtime, "i-exit") == ["bye"]


async def test_delete_is_idempotent_and_leaves_nothing_running(
    harness: Harness, runtime: Runtime
) -> None:
    await runtime.create(harness.server("i-deleted"))
    pid = harness.pid_of("i-deleted")
    create_time = psutil.Process(pid).create_time()

    await runtime.delete(InstanceId("i-deleted"), grace_s=5.0)
    await runtime.delete(InstanceId("i-deleted"), grace_s=5.0)
    await runtime.delete(InstanceId("i-never-created"), grace_s=5.0)

    assert await runtime.list() == []
    assert is_gone(pid, create_time)


async def test_delete_kills_what_ignores_sigterm_after_the_grace(
    harness: Harness, runtime: Runtime
) -> None:
    script = "trap '' TERM; echo stubborn; while :; do sleep 1; done"
    await runtime.create(harness.shell("i-stubborn", script))
    await wait_for_log(runtime, "i-stubborn", "stubborn")
    pid = harness.pid_of("i-stubborn")
    create_time = psutil.Process(pid).create_time()

    started_s = time.monotonic()
    await runtime.delete(InstanceId("i-stubborn"), grace_s=0.5)

    assert time.monotonic() - started_s >= 0.5

    async def gone() -> bool:
        return is_gone(pid, create_time)

    await wait_until(gone, timeout_s=5.0)


async def test_limits_are_reported_and_listed(runtime: Runtime, harness: Harness) -> None:
    configuration = Configuration(name="test.1", vcpu=1, memory_bytes=256 * MIB, gpus=1)
    spec = harness.shell("i-limited", SLEEPER, configuration=configuration)
    observed = await runtime.create(spec)

    assert any(limit.startswith("cpus=1 ") for limit in observed.limits_applied)
    assert any(limit.startswith("memory=256 MiB ") for limit in observed.limits_applied)
    assert any(limit.startswith("gpus=1:") for limit in observed.limits_not_applied)
    [listed] = await runtime.list()
    assert listed.limits_applied == observed.limits_applied
    assert listed.limits_not_applied == observed.limits_not_applied


async def test_more_vcpu_than_the_machine_has_is_reported(
    harness: Harness, runtime: Runtime
) -> None:
    vcpu = (os.cpu_count() or 1) + 1
    configuration = Configuration(name="test.big", vcpu=vcpu, memory_bytes=256 * MIB)
    spec = harness.shell("i-big", SLEEPER, configuration=configuration)
    observed = await runtime.create(spec)

    assert any(limit.startswith(f"vcpu={vcpu}: ") for limit in observed.limits_not_applied)


async def test_stats_measure_a_running_instance(harness: Harness, runtime: Runtime) -> None:
    await runtime.create(harness.shell("i-stats", SLEEPER))

    stats = await runtime.stats(InstanceId("i-stats"))
    assert stats.memory_bytes is not None and stats.memory_bytes > 0
    assert stats.cpu_percent is not None and stats.cpu_percent >= 0
    await runtime.delete(InstanceId("i-stats"), grace_s=1.0)
    gone = await runtime.stats(InstanceId("i-stats"))
    assert gone.memory_bytes is None and gone.cpu_percent is None
    never = await runtime.stats(InstanceId("i-never-created"))
    assert never.memory_bytes is None and never.cpu_percent is None


async def test_an_unknown_runtime_name_is_invalid_and_names_the_field() -> None:
    with pytest.raises(InvalidSpec) as caught:
        load_runtime("mainframe")

    assert caught.value.field == "runtime"
    assert all(name in caught.value.message for name in ("local", "docker", "swarm"))
