"""pier's model server on the local runtime starts as a fork of the fork server: served,
reaped, limited, sandboxed and adopted as an exec'd instance is, and exec'd where a fork
could not honour its environment."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from tests.conftest import IrisModel
from tests.runtimes.observing import http_get, wait_for_log, wait_for_phase, wait_until

from pier.domain.configurations import GIB, Configuration
from pier.domain.names import InstanceId, NodeKey, NodeName, ProjectName
from pier.runtimes import InstanceSpec, Observed
from pier.runtimes.base import Mount
from pier.runtimes.local import LocalRuntime
from pier.runtimes.local.forks import MODEL_SERVER, ForkServer, SetUpFailed, fork_servers

NODE = NodeKey(ProjectName("default"), NodeName("iris"))
FORK_SERVER = "pier.modelserver.forkserver"
LOOKOUT = """
import os, tempfile
import numpy as np

class Model:
    inputs = [{"name": "what", "datatype": "BYTES", "shape": [-1]}]
    outputs = [{"name": "seen", "datatype": "BYTES", "shape": [-1]}]

    def load(self):
        pass

    def predict(self, inputs):
        seen = {"tmp": tempfile.gettempdir(), "random": str(np.random.random())}
        names = [w.decode() if isinstance(w, bytes) else str(w) for w in inputs["what"]]
        return {"seen": [seen.get(n, os.environ.get(n, "-")) for n in names]}
"""
"""A Python model that answers what its process sees: variables, its temporary
directory, a draw of numpy's global random state."""


@pytest.fixture(autouse=True)
def stop_fork_servers() -> Iterator[None]:
    yield
    fork_servers.close()  # this test's; instances are deleted by the runtime fixture


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[LocalRuntime]:
    runtime = LocalRuntime(tmp_path / "instances")
    yield runtime
    for seen in await runtime.list():
        await runtime.delete(seen.instance_id, grace_s=2.0)
    await runtime.close()


def model_server(
    iris: IrisModel,
    instance_id: str,
    *,
    env: dict[str, str] | None = None,
    configuration: Configuration | None = None,
) -> InstanceSpec:
    path = "{workdir}/model/iris.onnx"  # a copy: the sandbox user may not read the original
    command = (*MODEL_SERVER, "--name", "iris", "--path", path, "--port", "{port}")
    return InstanceSpec(
        InstanceId(instance_id), NODE, command, env=env or {}, configuration=configuration,
        mounts=(Mount(iris.path, "model/iris.onnx"),),
    )  # fmt: skip


@pytest.fixture(scope="module")
def lookout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("lookout")
    (directory / "model.py").write_text(LOOKOUT)
    return directory


def lookout_server(lookout: Path, instance_id: str, env: dict[str, str]) -> InstanceSpec:
    command = (*MODEL_SERVER, "--name", "lookout", "--format", "python",
               "--path", "{workdir}/model", "--port", "{port}")  # fmt: skip
    return InstanceSpec(
        InstanceId(instance_id), NODE, command, env=env, mounts=(Mount(lookout, "model"),)
    )


async def ask(observed: Observed, *names: str) -> list[str]:
    """What the lookout model's process sees of ``names``."""
    request = {"inputs": [{"name": "what", "datatype": "BYTES", "shape": [len(names)],
                           "data": list(names)}]}  # fmt: skip
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{observed.endpoint}/v2/models/lookout/infer", json=request)
    assert answer.status_code == 200, answer.text
    seen: list[str] = answer.json()["outputs"][0]["data"]
    return seen


async def serving(observed: Observed) -> psutil.Process:
    """The instance's process, once its model answers."""
    assert observed.endpoint is not None and observed.pid is not None
    await wait_until(lambda: _is_ready(observed.endpoint or ""), timeout_s=60.0)
    return psutil.Process(observed.pid)


async def _is_ready(endpoint: str) -> bool:
    response = await http_get(f"{endpoint}/v2/health/ready", timeout_s=30.0)
    return response.status_code == 200


def is_fork_server(process: psutil.Process) -> bool:
    return FORK_SERVER in " ".join(process.cmdline())


async def test_a_model_server_is_forked_and_answers_as_an_exec_d_one(
    runtime: LocalRuntime, iris_onnx: IrisModel
) -> None:
    observed = await runtime.create(model_server(iris_onnx, "i-forked"))
    process = await serving(observed)

    parent = process.parent()
    assert parent is not None and is_fork_server(parent)
    assert parent.ppid() == os.getpid()
    assert os.getsid(process.pid) == process.pid  # a session of its own, as exec'd
    assert Path(process.cwd()).name == "i-forked"
    assert process.cmdline()[:5] == ["python", "-m", "pier.modelserver", "--name", "iris"]
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{observed.endpoint}/v2/models/iris/infer", json=iris_onnx.infer_request(0)
        )
    assert answer.status_code == 200
    assert answer.json()["outputs"][0]["data"] == [int(iris_onnx.labels[0])]
    await wait_for_log(runtime, "i-forked", "model server listening")


async def test_a_forked_model_server_sees_its_own_environment(
    runtime: LocalRuntime, lookout: Path
) -> None:
    first = await runtime.create(lookout_server(lookout, "i-blue", {"COLOUR": "blue"}))
    second = await runtime.create(lookout_server(lookout, "i-red", {"COLOUR": "red"}))
    for observed in (first, second):
        process = await serving(observed)
        assert is_fork_server(process.parent() or process)

    colour, port, telemetry, threads, home, tmp, draw = await ask(
        first, "COLOUR", "PIER_PORT", "ORT_DISABLE_TELEMETRY", "OPENBLAS_NUM_THREADS", "HOME",
        "tmp", "random",
    )  # fmt: skip
    assert (colour, telemetry, threads) == ("blue", "1", "1")
    assert port == str(first.endpoint).rsplit(":", 1)[1]
    assert Path(home).name == "i-blue" and tmp == f"{home}/tmp"
    assert await ask(second, "COLOUR") == ["red"]
    assert (await ask(second, "random")) != [draw], "each child seeds numpy's random state"


async def test_a_forked_model_server_keeps_no_descriptor_of_the_fork_server(
    runtime: LocalRuntime, iris_onnx: IrisModel, tmp_path: Path
) -> None:
    observed = await runtime.create(model_server(iris_onnx, "i-fds"))
    process = await serving(observed)

    server = process.parent()
    assert server is not None and is_fork_server(server)
    shared = (descriptors(server.pid) - {os.devnull}) & descriptors(process.pid)
    assert shared == set(), "the fork server's sockets and pipes stay out of the child"
    log_file = str(tmp_path / "instances" / "i-fds.log")
    assert os.readlink(f"/proc/{process.pid}/fd/1") == log_file
    assert os.readlink(f"/proc/{process.pid}/fd/2") == log_file
    assert os.readlink(f"/proc/{process.pid}/fd/0") == os.devnull


def descriptors(pid: int) -> set[str]:
    """What each open descriptor of ``pid`` points at (socket:[inode], a path...)."""
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            found.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            continue
    return found


async def test_the_fork_server_never_holds_an_instance_environment(
    runtime: LocalRuntime, lookout: Path
) -> None:
    secret = f"s3cret-{secrets.token_hex(12)}"
    first = await runtime.create(lookout_server(lookout, "i-secret", {"TOKEN": secret}))
    await serving(first)
    assert await ask(first, "TOKEN") == [secret]
    second = await runtime.create(lookout_server(lookout, "i-other", {}))
    other = await serving(second)

    assert await ask(second, "TOKEN") == ["-"]
    parent = other.parent()
    assert parent is not None and is_fork_server(parent)
    for pid in (parent.pid, other.pid):
        assert secret.encode() not in memory_of(pid), f"process {pid} holds the secret"


def memory_of(pid: int) -> bytes:
    """Every readable private mapping of ``pid``, concatenated."""
    found = bytearray()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5].startswith("/")):
                continue  # unreadable, or a file's pages
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(start)
                found += mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
    return bytes(found)


async def test_the_exit_code_of_a_forked_model_server_is_reported(
    runtime: LocalRuntime, iris_onnx: IrisModel
) -> None:
    killed = await runtime.create(model_server(iris_onnx, "i-killed"))
    stopped = await runtime.create(model_server(iris_onnx, "i-stopped"))
    for observed, sig in ((killed, signal.SIGKILL), (stopped, signal.SIGTERM)):
        await serving(observed)
        os.kill(observed.pid or 0, sig)

    assert (await wait_for_phase(runtime, "i-killed", "exited")).exit_code == 137
    assert (await wait_for_phase(runtime, "i-stopped", "exited")).exit_code == 0


async def test_limits_apply_to_a_forked_model_server(
    runtime: LocalRuntime, iris_onnx: IrisModel
) -> None:
    configuration = Configuration(name="small", vcpu=1, memory_bytes=2 * GIB)
    observed = await runtime.create(model_server(iris_onnx, "i-small", configuration=configuration))
    process = await serving(observed)

    assert is_fork_server(process.parent() or process)
    assert len(process.cpu_affinity()) == 1
    assert f"affinity {process.cpu_affinity()[0]})" in " ".join(observed.limits_applied)
    [data] = [line for line in limits_of(process.pid) if line.startswith("Max data size")]
    assert data.split()[3:5] == [str(2 * GIB), str(2 * GIB)]  # soft, hard


def limits_of(pid: int) -> list[str]:
    with open(f"/proc/{pid}/limits") as f:
        return f.read().splitlines()


@pytest.mark.parametrize(
    "env", [{"PYTHONPATH": "/nowhere"}, {"OMP_NUM_THREADS": "2"}, {"OPENBLAS_NUM_THREADS": "2"}]
)
async def test_a_node_env_read_at_start_gets_an_exec_d_model_server(
    runtime: LocalRuntime, iris_onnx: IrisModel, env: dict[str, str]
) -> None:
    observed = await runtime.create(model_server(iris_onnx, "i-execd", env=env))
    process = await serving(observed)

    assert process.ppid() == os.getpid()
    assert process.environ().items() >= env.items()  # exec'd: its first environment


async def test_with_forking_off_model_servers_are_exec_d(
    tmp_path: Path, iris_onnx: IrisModel
) -> None:
    runtime = LocalRuntime(tmp_path / "instances", fork_model_servers=False)
    try:
        observed = await runtime.create(model_server(iris_onnx, "i-plain"))
        process = await serving(observed)
        assert process.ppid() == os.getpid()
        assert process.environ()["ORT_DISABLE_TELEMETRY"] == "1"  # as a forked one's
    finally:
        await runtime.delete(InstanceId("i-plain"), grace_s=2.0)
        await runtime.close()


async def test_instances_outlive_their_fork_server_and_a_new_one_starts(
    runtime: LocalRuntime, iris_onnx: IrisModel
) -> None:
    first = await runtime.create(model_server(iris_onnx, "i-first"))
    process = await serving(first)
    old_server = process.parent()
    assert old_server is not None and is_fork_server(old_server)

    old_server.kill()
    old_server.wait(10)
    assert (await http_get(f"{first.endpoint}/v2/health/ready")).status_code == 200
    assert (await wait_for_phase(runtime, "i-first", "running")).pid == process.pid

    second = await runtime.create(model_server(iris_onnx, "i-second"))
    new_server = (await serving(second)).parent()
    assert new_server is not None and is_fork_server(new_server)
    assert new_server.pid != old_server.pid

    process.kill()  # reparented: its exit code is nobody's to know now, as an adopted one's
    assert (await wait_for_phase(runtime, "i-first", "exited")).exit_code is None


def test_a_child_that_cannot_set_itself_up_fails_its_spawn(tmp_path: Path) -> None:
    server = ForkServer({"PATH": os.environ["PATH"]}, {"start_new_session": True, "cwd": "/"})
    try:
        with open(tmp_path / "log", "ab") as log_file, pytest.raises(SetUpFailed) as failed:
            server.spawn(["--name", "m", "--path", "/nowhere"], env={}, cwd=tmp_path / "missing",
                         log_fd=log_file.fileno(), cpus=None, memory_bytes=None)  # fmt: skip
        assert "FileNotFoundError" in str(failed.value)
        assert server.alive
    finally:
        server.close()
    assert server._popen.returncode == 0


def test_a_spawn_request_without_descriptors_is_refused(tmp_path: Path) -> None:
    server = ForkServer({"PATH": os.environ["PATH"]}, {"start_new_session": True, "cwd": "/"})
    try:
        control = server._control
        control.send(b'{"op": "spawn", "id": 999}')
        control.send(b"not json")
        with open(tmp_path / "log", "ab") as log_file:
            child, _ticks = server.spawn(
                ["--name", "m", "--path", "/nowhere"], env={}, cwd=tmp_path,
                log_fd=log_file.fileno(), cpus=None, memory_bytes=None,
            )  # fmt: skip
        assert child.wait(30) == 2  # the model server's own refusal of its arguments
    finally:
        server.close()
    assert "usage: python -m pier.modelserver" in (tmp_path / "log").read_text()


def test_a_child_that_pier_gave_up_on_never_runs(tmp_path: Path) -> None:
    """The fork server's answer lost (pier saw it gone, and exec'd the instance instead):
    the child it forked all the same must not serve as a second copy."""
    server = ForkServer({"PATH": os.environ["PATH"]}, {"start_new_session": True, "cwd": "/"})
    try:
        mine, theirs = socket.socketpair()
        with open(tmp_path / "log", "ab") as log_file:
            socket.send_fds(server._control, [b'{"op": "spawn", "id": 999}'],
                            [log_file.fileno(), theirs.fileno()])  # fmt: skip
        theirs.close()
        request = json.dumps({"argv": ["--name", "never", "--path", str(tmp_path)],
                              "env": {}, "cwd": str(tmp_path)}).encode()  # fmt: skip
        mine.sendall(len(request).to_bytes(8, "big") + request)
        assert mine.recv(16) == b"ok\n"  # set up, and waiting for pier's word
        [child] = psutil.Process(server.pid).children()
        mine.close()  # no word: pier took another way
        child.wait(10)  # it ends (its status is the fork server's to reap: 127)
        assert (tmp_path / "log").read_bytes() == b""  # the model server never started
    finally:
        server.close()
