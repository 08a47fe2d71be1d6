"""What only the local runtime promises: process groups, state files, surviving pier's
death, and how limits are planned. The shared behaviour is in test_runtime_contract.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.runtimes.observing import is_gone, read_logs, wait_for_log, wait_for_phase, wait_until

from pier.domain.configurations import GIB, Configuration, format_bytes
from pier.domain.errors import InvalidSpec, RuntimeUnavailable
from pier.domain.names import InstanceId, NodeKey, NodeName, ProjectName
from pier.runtimes import InstanceSpec
from pier.runtimes.base import Mount
from pier.runtimes.local import LocalRuntime
from pier.runtimes.local.limits import format_cpus, plan_limits
from pier.runtimes.local.logs import LOG_CHUNK_BYTES, LogReader
from pier.runtimes.local.processes import AdoptedProcesses
from pier.sandbox import DEFAULT_USER

MIB = 2**20
NODE = NodeKey(ProjectName("default"), NodeName("node-a"))
UNBUFFERED = {"PYTHONUNBUFFERED": "1"}
SLEEPER = (sys.executable, "-c", "import time; time.sleep(120)")

PIER_KILLED_AFTER_CREATE = """
import asyncio, os, signal, sys
from pathlib import Path
from pier.domain.names import InstanceId, NodeKey
from pier.runtimes.base import InstanceSpec
from pier.runtimes.local import LocalRuntime

async def main():
    runtime = LocalRuntime(Path(sys.argv[1]))
    node = NodeKey.parse("default/node-a")
    spec = InstanceSpec(InstanceId("i-orphan"), node, tuple(sys.argv[2:]))
    observed = await runtime.create(spec)
    print("ENDPOINT", observed.endpoint, flush=True)

asyncio.run(main())
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[LocalRuntime]:
    runtime = LocalRuntime(tmp_path / "instances")
    yield runtime
    for seen in await runtime.list():
        await runtime.delete(seen.instance_id, grace_s=1.0)
    await runtime.close()


def make_spec(
    instance_id: str,
    command: tuple[str, ...] = SLEEPER,
    *,
    configuration: Configuration | None = None,
) -> InstanceSpec:
    return InstanceSpec(InstanceId(instance_id), NODE, command, configuration=configuration)


async def wait_for_exit(runtime: LocalRuntime, instance_id: str) -> int | None:
    for _ in range(200):
        [seen] = [o for o in await runtime.list() if o.instance_id == instance_id]
        if seen.phase == "exited":
            return seen.exit_code
        await asyncio.sleep(0.05)
    raise AssertionError(f"{instance_id} did not exit")


async def test_instances_run_in_a_process_group_and_session_of_their_own(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    await runtime.create(make_spec("i-group"))
    state = json.loads((tmp_path / "instances" / "i-group.json").read_text())
    pid = state["pid"]

    assert os.getpgid(pid) == pid != os.getpgid(0)
    assert os.getsid(pid) == pid
    assert state["create_time"] == psutil.Process(pid).create_time()
    assert {"instance_id", "project", "node", "generation", "port"} <= state.keys()
    assert not list((tmp_path / "instances").glob("*.tmp")), "state written by rename"


async def test_instances_survive_pier_being_killed_and_are_adopted(
    tmp_path: Path, runtime: LocalRuntime
) -> None:
    server = (sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1")
    pier = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", PIER_KILLED_AFTER_CREATE, str(tmp_path / "instances"), *server],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert pier.returncode == -signal.SIGKILL, pier.stderr
    [endpoint] = [line.split()[1] for line in pier.stdout.splitlines() if "ENDPOINT" in line]

    [adopted] = await runtime.list()
    assert (adopted.instance_id, adopted.phase, adopted.endpoint) == (
        "i-orphan",
        "running",
        endpoint,
    )
    state = json.loads((tmp_path / "instances" / "i-orphan.json").read_text())
    os.kill(state["pid"], signal.SIGKILL)
    assert await wait_for_exit(runtime, "i-orphan") is None, "not our child: code unknown"


async def test_delete_stops_the_whole_process_group(runtime: LocalRuntime) -> None:
    code = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print('grandchild', child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    spec = InstanceSpec(
        InstanceId("i-stubborn"), NODE, (sys.executable, "-c", code), env=UNBUFFERED
    )
    created = await runtime.create(spec)
    lines = await wait_for_log(runtime, "i-stubborn", "grandchild")
    assert created.pid is not None
    pids = [created.pid, int(lines[-1].split()[1])]
    create_times = [psutil.Process(pid).create_time() for pid in pids]

    await runtime.delete(InstanceId("i-stubborn"), grace_s=0.5)

    async def all_gone() -> bool:
        return all(map(is_gone, pids, create_times))

    await wait_until(all_gone, timeout_s=5.0)


async def test_cpu_affinity_is_applied(runtime: LocalRuntime) -> None:
    configuration = Configuration(name="test.1", vcpu=1, memory_bytes=4 * GIB)
    observed = await runtime.create(make_spec("i-limited", configuration=configuration))

    [cpus] = [limit for limit in observed.limits_applied if limit.startswith("cpus=1 ")]
    assert observed.pid is not None
    assert cpus == f"cpus=1 (affinity {format_cpus(psutil.Process(observed.pid).cpu_affinity())})"
    assert "memory=4 GiB (RLIMIT_DATA)" in observed.limits_applied


async def test_instances_are_spread_over_the_cpus(runtime: LocalRuntime) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs at least 2 CPUs")
    configuration = Configuration(name="test.1", vcpu=1, memory_bytes=4 * GIB)
    first = await runtime.create(make_spec("i-cpu-1", configuration=configuration))
    second = await runtime.create(make_spec("i-cpu-2", configuration=configuration))

    affinities = [psutil.Process(o.pid).cpu_affinity() for o in (first, second) if o.pid]
    assert len(affinities) == 2 and affinities[0] != affinities[1]


async def test_a_memory_limit_stops_a_child_that_allocates_more(runtime: LocalRuntime) -> None:
    configuration = Configuration(name="test.small", vcpu=1, memory_bytes=200 * MIB)
    code = (
        "import numpy as np\n"
        "a = np.ones(50 * 2**20 // 8)\n"
        "print('numpy works under the limit', flush=True)\n"
        "b = bytearray(400 * 2**20)\n"
        "print('allocated 400 MiB', flush=True)\n"
    )
    spec = InstanceSpec(
        InstanceId("i-hog"), NODE, (sys.executable, "-c", code), env=UNBUFFERED,
        configuration=configuration,
    )  # fmt: skip
    observed = await runtime.create(spec)

    assert "memory=200 MiB (RLIMIT_DATA)" in observed.limits_applied
    exited = await wait_for_phase(runtime, "i-hog", "exited")
    lines = await read_logs(runtime, "i-hog")
    assert exited.exit_code != 0
    assert "numpy works under the limit" in lines
    assert "allocated 400 MiB" not in lines
    assert lines[-1] == "MemoryError"


async def test_a_command_that_cannot_start_is_invalid(runtime: LocalRuntime) -> None:
    with pytest.raises(InvalidSpec) as caught:
        await runtime.create(make_spec("i-missing", ("/nonexistent/server",)))

    assert caught.value.field == "command"
    assert await runtime.list() == []
    lines = [line async for line in runtime.logs(InstanceId("i-missing"), follow=False)]
    assert "cannot start /nonexistent/server" in lines[-1]


async def test_an_instance_id_cannot_escape_the_state_dir(runtime: LocalRuntime) -> None:
    with pytest.raises(InvalidSpec) as caught:
        await runtime.create(make_spec("../escape"))

    assert caught.value.field == "instance_id"


SANDBOX_REPORT = """
import json, os, sys
def attempt(path):
    try:
        return open(path).read()
    except OSError as exc:
        return type(exc).__name__
print(json.dumps({"env": dict(os.environ), "cwd": os.getcwd(), "uid": os.getuid(),
                  "model": attempt(sys.argv[1]), "token": attempt(sys.argv[2])}), flush=True)
"""


async def test_an_instance_runs_sandboxed_with_its_own_copy_of_its_model(
    runtime: LocalRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIER_SECRET_PROBE", "xyz")
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    (data_dir / "admin.token").write_text("t0ken")
    (data_dir / "admin.token").chmod(0o600)
    (data_dir / "model.bin").write_text("weights")
    (data_dir / "model.bin").chmod(0o600)
    command = (sys.executable, "-c", SANDBOX_REPORT, "{workdir}/model/model.bin",
               str(data_dir / "admin.token"))  # fmt: skip
    spec = InstanceSpec(InstanceId("i-boxed"), NODE, command, env={"GREETING": "hi"},
                        mounts=(Mount(data_dir / "model.bin", "model/model.bin"),))  # fmt: skip
    await runtime.create(spec)
    assert await wait_for_exit(runtime, "i-boxed") == 0
    [line] = [line async for line in runtime.logs(InstanceId("i-boxed"), follow=False)]
    seen = json.loads(line)

    env, cwd = seen["env"], seen["cwd"]
    assert "PIER_SECRET_PROBE" not in env and env["GREETING"] == "hi"
    assert set(env) <= {"PATH", "LANG", "HOME", "TMPDIR", "GREETING", "PIER_PORT",
                        "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}  # fmt: skip
    assert env["HOME"] == cwd and not cwd.startswith(str(tmp_path))
    assert seen["model"] == "weights"
    if os.geteuid() == 0:
        import pwd

        assert seen["uid"] == pwd.getpwnam(DEFAULT_USER).pw_uid
        assert seen["token"] == "PermissionError"
        assert os.stat(cwd).st_uid == seen["uid"] and os.stat(cwd).st_mode & 0o777 == 0o700
    await runtime.delete(InstanceId("i-boxed"), grace_s=1.0)
    assert not Path(cwd).exists()


async def test_logs_stay_after_delete_until_removed(runtime: LocalRuntime, tmp_path: Path) -> None:
    await runtime.create(make_spec("i-logged", (sys.executable, "-c", "print('bye')")))
    assert await wait_for_exit(runtime, "i-logged") == 0
    await runtime.delete(InstanceId("i-logged"), grace_s=1.0)

    assert [line async for line in runtime.logs(InstanceId("i-logged"), follow=True)] == ["bye"]
    await runtime.remove_logs(InstanceId("i-logged"))
    await runtime.remove_logs(InstanceId("i-logged"))
    assert not (tmp_path / "instances" / "i-logged.log").exists()


def test_log_tail_counts_a_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_bytes(b"one\ntwo\nthree\npart")
    reader = LogReader(path)

    assert reader.read_tail(2) == ["three"]
    with path.open("ab") as f:
        f.write(b"ial\nfour\n")
    assert reader.read_lines() == (["partial", "four"], True)
    assert reader.flush() is None


def test_log_tail_reads_back_over_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    line = "x" * 999
    path.write_text(f"{line}\n" * (3 * LOG_CHUNK_BYTES // 1000) + "last\n")
    reader = LogReader(path)

    assert reader.read_tail(1) == ["last"]
    assert reader.read_tail(2500) == [line] * 2499 + ["last"]
    assert reader.read_tail(0) == []
    assert reader.read_lines() == ([], True)


def test_limits_are_planned_and_described() -> None:
    configuration = Configuration(name="c", vcpu=2, memory_bytes=8 * GIB, gpus=1)

    plan = plan_limits(configuration, available_cpus=[0, 1, 2, 3], first_cpu_index=3)

    assert plan.cpus == (0, 3)
    assert plan.memory_bytes == 8 * GIB
    assert plan.applied == ("cpus=2 (affinity 0,3)", "memory=8 GiB (RLIMIT_DATA)")
    assert plan.not_applied == ("gpus=1: not applied: the local runtime has no GPU isolation",)


def test_limits_are_capped_by_what_the_machine_allows() -> None:
    configuration = Configuration(name="c", vcpu=8, memory_bytes=8 * GIB)

    plan = plan_limits(configuration, available_cpus=[0, 1], memory_hard_limit_bytes=4 * GIB)

    assert plan.cpus is None
    assert plan.not_applied == ("vcpu=8: only 2 CPUs on this machine, affinity to all of them",)
    assert plan.memory_bytes == 4 * GIB
    assert plan.applied == (
        "memory=4 GiB (RLIMIT_DATA; 8 GiB asked, capped by pier's own hard limit)",
    )
    assert plan_limits(None, available_cpus=[0]).preexec() is None


def test_cpus_and_bytes_read_like_the_tools_write_them() -> None:
    assert format_cpus([5, 0, 1, 2, 7, 8]) == "0-2,5,7-8"
    assert format_cpus([3]) == "3"
    assert format_bytes(200 * 2**20) == "200 MiB"
    assert format_bytes(3 * 2**29) == "1.5 GiB"
    assert format_bytes(512) == "512 B"


CHATTY = (
    "import time\n"
    "for i in range(3000): print(f'line {i:05d} ' + 'x' * 90)\n"
    "print('done', flush=True); time.sleep(60)"
)


async def wait_for_file(path: Path, check: Callable[[Path], bool]) -> None:
    for _ in range(200):
        if path.exists() and check(path):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} did not get there")


async def test_a_big_log_is_rotated_and_read_back_whole(tmp_path: Path) -> None:
    state_dir = tmp_path / "instances"
    runtime = LocalRuntime(state_dir, log_max_bytes=64 * 1024, log_rotate_period_s=3600)
    log = state_dir / "i-chatty.log"
    try:
        await runtime.create(make_spec("i-chatty", (sys.executable, "-c", CHATTY)))
        await wait_for_file(log, lambda p: p.read_bytes().endswith(b"done\n"))
        # a restarted pier keeps the logs of the instances it adopts bounded, on its own
        restarted = LocalRuntime(state_dir, log_max_bytes=64 * 1024, log_rotate_period_s=0.05)
        try:
            await wait_for_file(rotated := state_dir / "i-chatty.log.1", lambda p: True)
        finally:
            await restarted.close()
        assert log.stat().st_size == 0
        assert rotated.stat().st_size > 64 * 1024

        whole = [line async for line in runtime.logs(InstanceId("i-chatty"), follow=False)]
        tail = [line async for line in runtime.logs(InstanceId("i-chatty"), follow=False, tail=3)]
        with log.open("a") as f:  # the instance writes on after the rotation
            f.write("after rotation\n")
        newest = [line async for line in runtime.logs(InstanceId("i-chatty"), follow=False, tail=2)]
    finally:
        await runtime.delete(InstanceId("i-chatty"), grace_s=1.0)
        await runtime.remove_logs(InstanceId("i-chatty"))
        await runtime.close()
    assert len(whole) == 3001 and whole[0].startswith("line 00000") and whole[-1] == "done"
    assert [line.split()[1] for line in tail[:2]] == ["02998", "02999"] and tail[2] == "done"
    assert newest == ["done", "after rotation"]
    assert not (tmp_path / "instances" / "i-chatty.log.1").exists()


async def test_list_only_reads_and_leaves_a_big_log_alone(tmp_path: Path) -> None:
    state_dir = tmp_path / "instances"
    runtime = LocalRuntime(state_dir, log_max_bytes=64 * 1024, log_rotate_period_s=3600)
    log = state_dir / "i-chatty.log"
    try:
        await runtime.create(make_spec("i-chatty", (sys.executable, "-c", CHATTY)))
        await wait_for_file(log, lambda p: p.read_bytes().endswith(b"done\n"))
        size = log.stat().st_size

        [seen] = await runtime.list()

        assert seen.phase == "running"
        assert log.stat().st_size == size > 64 * 1024
        assert not (state_dir / "i-chatty.log.1").exists()
    finally:
        await runtime.delete(InstanceId("i-chatty"), grace_s=1.0)
        await runtime.close()


async def test_the_local_runtime_runs_no_images(runtime: LocalRuntime) -> None:
    with pytest.raises(RuntimeUnavailable, match="the local runtime cannot pull images"):
        await runtime.resolve_image("127.0.0.1:5000/pier-test/echo:1")


async def test_stats_count_the_whole_tree_and_look_it_up_once_a_window(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memory of a child is the instance's too; the tree is looked up (a read of every
    process on the machine) once per TREE_REFRESH_S, not at every measure, and one look
    serves every instance measured with it."""
    code = (
        "import subprocess, sys, time\n"
        "hold = 'held = bytes(range(256)) * (80 * 2**12); import time; time.sleep(120)'\n"
        "child = subprocess.Popen([sys.executable, '-c', hold])\n"
        "print('child', child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    spec = InstanceSpec(InstanceId("i-tree"), NODE, (sys.executable, "-c", code), env=UNBUFFERED)
    await runtime.create(spec)
    lone = InstanceSpec(
        InstanceId("i-lone"), NODE, (sys.executable, "-c", "import time; time.sleep(120)")
    )
    await runtime.create(lone)
    lines = await wait_for_log(runtime, "i-tree", "child")
    child = psutil.Process(int(lines[-1].split()[1]))

    async def allocated() -> bool:
        return bool(child.memory_info().rss > 80 * MIB)

    await wait_until(allocated)
    lookups: list[int] = []
    process_iter = psutil.process_iter

    def counted(*args: Any, **kwargs: Any) -> Any:
        lookups.append(1)
        return process_iter(*args, **kwargs)

    monkeypatch.setattr(psutil, "process_iter", counted)
    ids = [InstanceId("i-tree"), InstanceId("i-lone")]
    first = await runtime.stats_of(ids)
    assert len(lookups) == 1  # one look at the machine's processes for both trees
    tree, alone = first[InstanceId("i-tree")], first[InstanceId("i-lone")]
    assert tree.memory_bytes is not None and tree.memory_bytes > 80 * MIB  # the child's
    assert alone.memory_bytes is not None and alone.memory_bytes < 80 * MIB
    for _ in range(3):
        again = await runtime.stats(InstanceId("i-tree"))
        assert again.memory_bytes is not None and again.memory_bytes > 80 * MIB
    assert len(lookups) == 1  # measured on the tree it knows
    monkeypatch.setattr("pier.runtimes.local.runtime.TREE_REFRESH_S", 0.0)
    monkeypatch.setattr("pier.runtimes.local.runtime.PARENTS_FRESH_S", 0.0)
    await runtime.stats(InstanceId("i-tree"))
    assert len(lookups) == 2  # the window is over: looked up again


def test_an_adopted_process_is_known_by_its_pid_and_creation_time() -> None:
    """A pid that another process now has (its creation time differs) is not the
    instance's; the instance's own runs until it exits (a zombie has exited)."""
    watch = AdoptedProcesses()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = psutil.Process(sleeper.pid).create_time()
        assert watch.is_running(sleeper.pid, started - 5.0) is False  # a stranger's pid
        assert watch.is_running(sleeper.pid, started) is True
        assert watch.is_running(sleeper.pid, started) is True  # from its pidfd now
        sleeper.kill()
        deadline = time.monotonic() + 10
        while watch.is_running(sleeper.pid, started):  # not reaped yet: a zombie
            assert time.monotonic() < deadline, "the killed process still counts as running"
            time.sleep(0.01)
        sleeper.wait(10)
        assert watch.is_running(sleeper.pid, started) is False
    finally:
        sleeper.kill()
        sleeper.wait(10)
        watch.keep_only(set())
