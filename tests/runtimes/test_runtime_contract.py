"""The Runtime contract: one suite, run against every runtime (kopf's ALL_STORAGES idea).

Add a runtime by adding its name to RUNTIME_NAMES and a way to build it (and to find an
instance's pid) to RUNTIME_KWARGS / INSTANCE_PIDS. A runtime whose engine is absent is
skipped with the reason, except with CI=true, where it fails: `make test` installs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from pier.domain.configurations import GIB, Configuration
from pier.domain.errors import InvalidSpec, NotFound, RuntimeUnavailable
from pier.domain.names import InstanceId, NodeKey, NodeName, ProjectName
from pier.runtimes import InstanceSpec, Observed, Runtime, load_runtime
from pier.runtimes.local.limits import format_cpus

MIB = 2**20
NODE_A = NodeKey(ProjectName("default"), NodeName("node-a"))
NODE_B = NodeKey(ProjectName("default"), NodeName("node-b"))
UNBUFFERED = {"PYTHONUNBUFFERED": "1"}
SERVER = (sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1")
SLEEPER = (sys.executable, "-c", "import time; print('up', flush=True); time.sleep(120)")

RUNTIME_NAMES = ["local"]
RUNTIME_KWARGS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "local": lambda tmp_path: {"state_dir": tmp_path / "instances"},
}


def local_pid(tmp_path: Path, instance_id: str) -> int:
    state = json.loads((tmp_path / "instances" / f"{instance_id}.json").read_text())
    return int(state["pid"])


INSTANCE_PIDS: dict[str, Callable[[Path, str], int]] = {"local": local_pid}
"""How a test finds the host pid of an instance's main process, per runtime."""


@dataclass
class Harness:
    """One runtime under test: opens runtime objects on the same state, like a restarted pier."""

    name: str
    tmp_path: Path
    opened: list[Runtime] = field(default_factory=list)

    def open(self) -> Runtime:
        try:
            runtime = load_runtime(self.name, **RUNTIME_KWARGS[self.name](self.tmp_path))
        except RuntimeUnavailable as e:
            if os.environ.get("CI") == "true":
                pytest.fail(f"runtime {self.name!r} must be available in CI: {e}")
            pytest.skip(f"runtime {self.name!r} is not available here: {e}")
        self.opened.append(runtime)
        return runtime

    def pid_of(self, instance_id: str) -> int:
        return INSTANCE_PIDS[self.name](self.tmp_path, instance_id)


@pytest.fixture(params=RUNTIME_NAMES)
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(request.param, tmp_path)
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


def make_spec(
    instance_id: str,
    command: tuple[str, ...] = SERVER,
    *,
    node: NodeKey = NODE_A,
    configuration: Configuration | None = None,
    env: dict[str, str] | None = None,
) -> InstanceSpec:
    return InstanceSpec(
        instance_id=InstanceId(instance_id),
        node=node,
        command=command,
        env={**UNBUFFERED, **(env or {})},
        configuration=configuration,
    )


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


async def wait_until(check: Callable[[], Awaitable[bool]], *, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.05)


async def wait_for_phase(runtime: Runtime, instance_id: str, phase: str) -> Observed:
    found: list[Observed] = []

    async def has_phase() -> bool:
        found[:] = [o for o in await runtime.list() if o.instance_id == instance_id]
        return bool(found) and found[0].phase == phase

    await wait_until(has_phase)
    return found[0]


async def read_logs(runtime: Runtime, instance_id: str, *, tail: int | None = None) -> list[str]:
    return [line async for line in runtime.logs(InstanceId(instance_id), follow=False, tail=tail)]


async def wait_for_log(runtime: Runtime, instance_id: str, text: str) -> list[str]:
    lines: list[str] = []

    async def logged() -> bool:
        lines[:] = await read_logs(runtime, instance_id)
        return any(text in line for line in lines)

    await wait_until(logged)
    return lines


async def http_get(url: str, *, timeout_s: float = 10.0) -> httpx.Response:
    """GET, retrying while the server is still starting."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            try:
                return await client.get(url)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)


def is_gone(pid: int, create_time: float) -> bool:
    """No live process with this pid and create time (zombies count as gone)."""
    try:
        process = psutil.Process(pid)
        return bool(
            abs(process.create_time() - create_time) > 0.01
            or process.status() == psutil.STATUS_ZOMBIE
        )
    except psutil.NoSuchProcess:
        return True


async def test_created_instance_answers_http_on_its_endpoint(runtime: Runtime) -> None:
    observed = await runtime.create(make_spec("i-http"))

    assert observed.phase == "running"
    assert observed.node == NODE_A
    assert observed.endpoint is not None
    assert observed.endpoint.startswith("http://127.0.0.1:")
    response = await http_get(f"{observed.endpoint}/")
    assert response.status_code == 200


async def test_port_reaches_the_command_in_argv_and_env(runtime: Runtime) -> None:
    code = "import os, sys; print(sys.argv[1], os.environ['PIER_PORT'], os.environ['GREETING'])"
    observed = await runtime.create(
        make_spec("i-port", (*python(code), "{port}"), env={"GREETING": "hello"})
    )

    assert observed.endpoint is not None
    port = observed.endpoint.rsplit(":", 1)[1]
    assert f"{port} {port} hello" in await wait_for_log(runtime, "i-port", "hello")


async def test_list_filters_by_node(runtime: Runtime) -> None:
    await runtime.create(make_spec("i-a", SLEEPER, node=NODE_A))
    await runtime.create(make_spec("i-b", SLEEPER, node=NODE_B))

    assert [o.instance_id for o in await runtime.list(node=NODE_A)] == ["i-a"]
    assert [o.instance_id for o in await runtime.list(node=NODE_B)] == ["i-b"]
    assert sorted(o.instance_id for o in await runtime.list()) == ["i-a", "i-b"]


async def test_logs_give_the_output_and_tail_gives_the_last_lines(runtime: Runtime) -> None:
    await runtime.create(make_spec("i-lines", python("for i in range(1, 6): print('line', i)")))
    await wait_for_phase(runtime, "i-lines", "exited")

    assert await read_logs(runtime, "i-lines") == [f"line {i}" for i in range(1, 6)]
    assert await read_logs(runtime, "i-lines", tail=2) == ["line 4", "line 5"]


async def test_follow_yields_new_lines_until_the_instance_is_deleted(runtime: Runtime) -> None:
    observed = await runtime.create(make_spec("i-follow"))
    await wait_for_log(runtime, "i-follow", "Serving HTTP")
    followed: list[str] = []

    async def follow() -> None:
        async for line in runtime.logs(InstanceId("i-follow"), follow=True, tail=1):
            followed.append(line)

    task = asyncio.create_task(follow())
    await http_get(f"{observed.endpoint}/followed-path")

    async def request_logged() -> bool:
        return any("GET /followed-path" in line for line in followed)

    await wait_until(request_logged)
    await runtime.delete(InstanceId("i-follow"), grace_s=2.0)
    await asyncio.wait_for(task, timeout=5.0)
    assert "Serving HTTP" in followed[0]


async def test_logs_of_an_unknown_instance_raise_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFound):
        await read_logs(runtime, "i-never-created")


async def test_a_new_runtime_adopts_running_instances(harness: Harness) -> None:
    first = harness.open()
    created = await first.create(make_spec("i-adopted"))
    await http_get(f"{created.endpoint}/")
    await first.close()

    second = harness.open()
    [adopted] = await second.list(node=NODE_A)

    assert adopted.instance_id == "i-adopted"
    assert adopted.phase == "running"
    assert adopted.endpoint == created.endpoint
    assert (await http_get(f"{adopted.endpoint}/")).status_code == 200


async def test_a_killed_process_reads_exited(harness: Harness, runtime: Runtime) -> None:
    await runtime.create(make_spec("i-killed", SLEEPER))
    os.kill(harness.pid_of("i-killed"), signal.SIGKILL)

    observed = await wait_for_phase(runtime, "i-killed", "exited")

    assert observed.exit_code == 128 + signal.SIGKILL
    assert [o.instance_id for o in await runtime.list()] == ["i-killed"], "kept until deleted"


async def test_observed_names_the_process_to_signal(harness: Harness, runtime: Runtime) -> None:
    created = await runtime.create(make_spec("i-pid", SLEEPER))
    [listed] = await runtime.list()

    assert created.pid == listed.pid == harness.pid_of("i-pid")


async def test_the_exit_code_of_a_process_is_reported(runtime: Runtime) -> None:
    await runtime.create(make_spec("i-exit", python("raise SystemExit(3)")))

    assert (await wait_for_phase(runtime, "i-exit", "exited")).exit_code == 3


async def test_delete_is_idempotent_and_leaves_nothing_running(
    harness: Harness, runtime: Runtime
) -> None:
    await runtime.create(make_spec("i-deleted"))
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
    code = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print('grandchild', child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    await runtime.create(make_spec("i-stubborn", python(code)))
    lines = await wait_for_log(runtime, "i-stubborn", "grandchild")
    pids = [harness.pid_of("i-stubborn"), int(lines[-1].split()[1])]
    create_times = [psutil.Process(pid).create_time() for pid in pids]

    started_s = time.monotonic()
    await runtime.delete(InstanceId("i-stubborn"), grace_s=0.5)

    assert time.monotonic() - started_s >= 0.5

    async def all_gone() -> bool:
        return all(map(is_gone, pids, create_times))

    await wait_until(all_gone, timeout_s=5.0)


async def test_limits_are_reported_and_cpu_affinity_is_applied(
    harness: Harness, runtime: Runtime
) -> None:
    configuration = Configuration(name="test.1", vcpu=1, memory_bytes=4 * GIB, gpus=1)
    observed = await runtime.create(make_spec("i-limited", SLEEPER, configuration=configuration))

    [cpus] = [limit for limit in observed.limits_applied if limit.startswith("cpus=1 ")]
    assert "memory=4 GiB" in " ".join(observed.limits_applied)
    assert any(limit.startswith("gpus=1:") for limit in observed.limits_not_applied)
    affinity = format_cpus(psutil.Process(harness.pid_of("i-limited")).cpu_affinity())
    assert cpus == f"cpus=1 (affinity {affinity})"
    [listed] = await runtime.list()
    assert listed.limits_applied == observed.limits_applied


async def test_instances_are_spread_over_the_cpus(harness: Harness, runtime: Runtime) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs at least 2 CPUs")
    configuration = Configuration(name="test.1", vcpu=1, memory_bytes=4 * GIB)
    await runtime.create(make_spec("i-cpu-1", SLEEPER, configuration=configuration))
    await runtime.create(make_spec("i-cpu-2", SLEEPER, configuration=configuration))

    affinities = [psutil.Process(harness.pid_of(i)).cpu_affinity() for i in ("i-cpu-1", "i-cpu-2")]
    assert affinities[0] != affinities[1]


async def test_more_vcpu_than_the_machine_has_is_reported(runtime: Runtime) -> None:
    vcpu = len(os.sched_getaffinity(0)) + 1
    configuration = Configuration(name="test.big", vcpu=vcpu, memory_bytes=4 * GIB)
    observed = await runtime.create(make_spec("i-big", SLEEPER, configuration=configuration))

    assert any(limit.startswith(f"vcpu={vcpu}: only") for limit in observed.limits_not_applied)


async def test_a_memory_limit_stops_a_child_that_allocates_more(
    harness: Harness, runtime: Runtime
) -> None:
    configuration = Configuration(name="test.small", vcpu=1, memory_bytes=200 * MIB)
    code = (
        "import numpy as np\n"
        "a = np.ones(50 * 2**20 // 8)\n"
        "print('numpy works under the limit', flush=True)\n"
        "b = bytearray(400 * 2**20)\n"
        "print('allocated 400 MiB', flush=True)\n"
    )
    observed = await runtime.create(make_spec("i-hog", python(code), configuration=configuration))

    assert "memory=200 MiB (RLIMIT_DATA)" in observed.limits_applied
    exited = await wait_for_phase(runtime, "i-hog", "exited")
    lines = await read_logs(runtime, "i-hog")
    assert exited.exit_code != 0
    assert "numpy works under the limit" in lines
    assert "allocated 400 MiB" not in lines
    if harness.name == "local":
        assert lines[-1] == "MemoryError"


async def test_stats_measure_a_running_instance(runtime: Runtime) -> None:
    await runtime.create(make_spec("i-stats", SLEEPER))

    stats = await runtime.stats(InstanceId("i-stats"))
    assert stats.memory_bytes is not None and stats.memory_bytes > 0
    assert stats.cpu_percent is not None
    await runtime.delete(InstanceId("i-stats"), grace_s=1.0)
    gone = await runtime.stats(InstanceId("i-stats"))
    assert gone.memory_bytes is None and gone.cpu_percent is None


async def test_an_unknown_runtime_name_is_invalid_and_names_the_field() -> None:
    with pytest.raises(InvalidSpec) as caught:
        load_runtime("mainframe")

    assert caught.value.field == "runtime"
    assert "local" in caught.value.message and "docker" in caught.value.message
