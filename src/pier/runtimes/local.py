"""The local runtime: each instance is a process on this machine.

Process group. Every instance starts in a session (and so a process group) of its own
(``start_new_session=True``). A Ctrl-C on the terminal running ``pier up`` goes to the
terminal's foreground process group, so it stops pier but not the instances; stopping them
on a clean shutdown is the controller's decision. ``delete`` signals the whole group, so
the workers a server forks are stopped with it.

Adoption. Nothing about an instance lives only in pier's memory. ``create`` writes
``<state_dir>/<instance_id>.json`` (atomically: tmp file + rename) with the instance's
project, node, generation, pid, port and the process's create time. After pier restarts,
even after a SIGKILL, a new LocalRuntime on the same state_dir reads those files and
``list`` reports the instances that still run, with the same endpoint, so the controller
adopts them instead of starting duplicates. A pid alone is not an identity (the kernel
reuses pids), so an instance counts as running only while a process with its pid *and*
its create time exists and is not a zombie.

Exit codes. Only the parent of a process learns its exit status. The Popen handles of
the processes this OS process started are kept in one process-wide table: polling them
reaps zombies and gives the exit code, whichever LocalRuntime object started or adopted
the instance. The code follows the shell and Docker convention: killed by signal N reads
as 128 + N (SIGKILL: 137). An instance adopted from an earlier pier process was reparented
when that process died, so its exit code is unknown (None).

Limits. The configuration is applied in the child before exec: CPU affinity to
``vcpu`` CPUs (starting CPU rotated per instance, so instances spread over the machine)
and RLIMIT_DATA for memory. RLIMIT_AS would be stricter on paper but counts address
space that numpy and onnxruntime reserve without using, so it breaks them well below the
configured memory. There is no GPU isolation. What was and was not applied is reported
in ``Observed.limits_applied`` / ``limits_not_applied``.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import resource
import signal
import socket
import subprocess
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import psutil
import structlog

from pier.domain.configurations import Configuration, format_bytes
from pier.domain.errors import InvalidSpec, NotFound
from pier.domain.names import InstanceId, NodeKey, NodeName, ProjectName
from pier.runtimes.base import InstanceSpec, InstanceStats, Observed

log = structlog.get_logger(__name__)

STATE_FORMAT: Final = 1
"""Version of the state file layout, stored in each file."""
LOG_POLL_PERIOD_S: Final = 0.2
"""How often ``logs(follow=True)`` looks for new lines."""
DELETE_POLL_PERIOD_S: Final = 0.05
"""How often ``delete`` checks whether the process group is gone."""
KILL_WAIT_S: Final = 5.0
"""After SIGKILL, how long ``delete`` waits for the group to disappear."""
LOG_CHUNK_BYTES: Final = 1 << 20
CREATE_TIME_TOLERANCE_S: Final = 0.01
HOST: Final = "127.0.0.1"

Phase = Literal["created", "running", "exited"]


@dataclass(frozen=True, slots=True)
class _Child:
    create_time: float
    popen: subprocess.Popen[bytes]


_children: dict[int, _Child] = {}
"""pid -> handle of every instance process this OS process started (see the docstring)."""
_children_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """The state file of one instance: what survives a restart of pier."""

    instance_id: InstanceId
    node: NodeKey
    generation: int
    pid: int
    create_time: float
    port: int
    limits_applied: tuple[str, ...] = ()
    limits_not_applied: tuple[str, ...] = ()

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": STATE_FORMAT,
                "instance_id": self.instance_id,
                "project": self.node.project,
                "node": self.node.node,
                "generation": self.generation,
                "pid": self.pid,
                "create_time": self.create_time,
                "port": self.port,
                "endpoint": self.endpoint,
                "limits_applied": list(self.limits_applied),
                "limits_not_applied": list(self.limits_not_applied),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> InstanceRecord:
        data: dict[str, Any] = json.loads(text)
        return cls(
            instance_id=InstanceId(data["instance_id"]),
            node=NodeKey(ProjectName(data["project"]), NodeName(data["node"])),
            generation=int(data["generation"]),
            pid=int(data["pid"]),
            create_time=float(data["create_time"]),
            port=int(data["port"]),
            limits_applied=tuple(data.get("limits_applied", ())),
            limits_not_applied=tuple(data.get("limits_not_applied", ())),
        )


@dataclass(frozen=True, slots=True)
class LimitPlan:
    """The limits one instance gets, decided in pier and applied in the child before exec."""

    cpus: tuple[int, ...] | None = None
    memory_bytes: int | None = None
    applied: tuple[str, ...] = ()
    not_applied: tuple[str, ...] = ()

    def preexec(self) -> Callable[[], None] | None:
        """The function the child runs between fork and exec; None when there is nothing to do."""
        cpus, memory_bytes = self.cpus, self.memory_bytes
        if cpus is None and memory_bytes is None:
            return None

        def apply_limits() -> None:
            if cpus is not None:
                os.sched_setaffinity(0, cpus)
            if memory_bytes is not None:
                resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))

        return apply_limits


def plan_limits(
    configuration: Configuration | None,
    *,
    available_cpus: Sequence[int],
    first_cpu_index: int = 0,
    memory_hard_limit_bytes: int = resource.RLIM_INFINITY,
) -> LimitPlan:
    """Decide CPU affinity and memory limit for ``configuration`` on this machine."""
    if configuration is None:
        return LimitPlan()
    applied: list[str] = []
    not_applied: list[str] = []
    cpus = _plan_cpus(configuration.vcpu, available_cpus, first_cpu_index, applied, not_applied)
    memory_bytes: int | None = None
    if configuration.memory_bytes > 0:
        memory_bytes = configuration.memory_bytes
        asked = format_bytes(memory_bytes)
        if memory_hard_limit_bytes != resource.RLIM_INFINITY and (
            memory_hard_limit_bytes < memory_bytes
        ):
            memory_bytes = memory_hard_limit_bytes
            applied.append(
                f"memory={format_bytes(memory_bytes)} (RLIMIT_DATA; {asked} asked, "
                "capped by pier's own hard limit)"
            )
        else:
            applied.append(f"memory={asked} (RLIMIT_DATA)")
    if configuration.gpus > 0:
        not_applied.append(
            f"gpus={configuration.gpus}: not applied: the local runtime has no GPU isolation"
        )
    return LimitPlan(cpus, memory_bytes, tuple(applied), tuple(not_applied))


def _plan_cpus(
    vcpu: int,
    available_cpus: Sequence[int],
    first_cpu_index: int,
    applied: list[str],
    not_applied: list[str],
) -> tuple[int, ...] | None:
    if vcpu <= 0:
        return None
    if not available_cpus:
        not_applied.append(f"vcpu={vcpu}: not applied: CPU affinity is not supported here")
        return None
    ordered = sorted(available_cpus)
    if vcpu > len(ordered):
        not_applied.append(
            f"vcpu={vcpu}: only {len(ordered)} CPUs on this machine, affinity to all of them"
        )
        return None
    chosen = sorted(ordered[(first_cpu_index + i) % len(ordered)] for i in range(vcpu))
    applied.append(f"cpus={vcpu} (affinity {format_cpus(chosen)})")
    return tuple(chosen)


def format_cpus(cpus: Sequence[int]) -> str:
    """CPU numbers as ranges, the way taskset and cgroups write them: "0-2,5"."""
    ranges: list[list[int]] = []
    for cpu in sorted(cpus):
        if ranges and cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(str(first) if first == last else f"{first}-{last}" for first, last in ranges)


def _available_cpus() -> list[int]:
    if not hasattr(os, "sched_getaffinity"):
        return []
    return sorted(os.sched_getaffinity(0))


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _check_instance_id(instance_id: str) -> None:
    if not instance_id or "/" in instance_id or "\0" in instance_id or instance_id[0] == ".":
        raise InvalidSpec("instance_id", f"{instance_id!r} cannot name a local instance")


def _same_process(process: psutil.Process, create_time: float) -> bool:
    return bool(abs(process.create_time() - create_time) < CREATE_TIME_TOLERANCE_S)


class LocalRuntime:
    """Instances as processes on this machine, state under ``state_dir``."""

    name = "local"

    def __init__(self, state_dir: Path) -> None:
        self._state_dir = Path(state_dir)
        self._cpu_cursor = 0
        self._port_lock = threading.Lock()
        self._recent_ports: deque[int] = deque(maxlen=256)
        self._cpu_probes: dict[InstanceId, dict[int, psutil.Process]] = {}

    # -- files ---------------------------------------------------------------------------

    def _state_path(self, instance_id: InstanceId) -> Path:
        _check_instance_id(instance_id)
        return self._state_dir / f"{instance_id}.json"

    def _log_path(self, instance_id: InstanceId) -> Path:
        _check_instance_id(instance_id)
        return self._state_dir / f"{instance_id}.log"

    def _read_record(self, instance_id: InstanceId) -> InstanceRecord | None:
        return self._load_record(self._state_path(instance_id))

    @staticmethod
    def _load_record(path: Path) -> InstanceRecord | None:
        try:
            return InstanceRecord.from_json(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("unreadable instance state file", path=str(path), error=str(e))
            return None

    def _write_record(self, record: InstanceRecord) -> None:
        path = self._state_path(record.instance_id)
        tmp = path.with_name(f"{path.name}.tmp")
        with open(tmp, "w") as f:
            f.write(record.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    # -- create --------------------------------------------------------------------------

    async def create(self, spec: InstanceSpec) -> Observed:
        """Start the instance's process; an instance that already runs is returned as it is."""
        _check_instance_id(spec.instance_id)
        if not spec.command and not spec.args:
            raise InvalidSpec("command", "the local runtime needs a command to run")
        existing = await asyncio.to_thread(self._read_record, spec.instance_id)
        if existing is not None:
            phase, exit_code = await asyncio.to_thread(_probe, existing)
            if phase == "running":
                return _observed(existing, phase, exit_code)
        limits = plan_limits(
            spec.configuration,
            available_cpus=_available_cpus(),
            first_cpu_index=self._cpu_cursor,
            memory_hard_limit_bytes=resource.getrlimit(resource.RLIMIT_DATA)[1],
        )
        self._cpu_cursor += len(limits.cpus or ())
        record = await asyncio.to_thread(self._start, spec, limits)
        log.info(
            "instance created",
            project=record.node.project,
            node=record.node.node,
            instance=record.instance_id,
            pid=record.pid,
            endpoint=record.endpoint,
        )
        return _observed(record, "running", None)

    def _start(self, spec: InstanceSpec, limits: LimitPlan) -> InstanceRecord:
        self._state_dir.mkdir(parents=True, exist_ok=True)
        port = self._pick_port()
        argv = [arg.replace("{port}", str(port)) for arg in (*spec.command, *spec.args)]
        env = {**os.environ, **spec.env, "PIER_PORT": str(port)}
        with open(self._log_path(spec.instance_id), "ab") as log_file:
            try:
                popen = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=env,
                    close_fds=True,
                    start_new_session=True,
                    preexec_fn=limits.preexec(),
                )
            except (OSError, subprocess.SubprocessError) as e:
                reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                log_file.write(f"pier: cannot start {argv[0]}: {reason}\n".encode())
                raise InvalidSpec("command", f"cannot start {argv[0]!r}: {reason}") from e
        try:
            create_time = psutil.Process(popen.pid).create_time()
            with _children_lock:
                _children[popen.pid] = _Child(create_time, popen)
            record = InstanceRecord(
                instance_id=spec.instance_id,
                node=spec.node,
                generation=spec.generation,
                pid=popen.pid,
                create_time=create_time,
                port=port,
                limits_applied=limits.applied,
                limits_not_applied=limits.not_applied,
            )
            self._write_record(record)
        except BaseException:
            _kill_group(popen.pid)
            popen.wait()
            raise
        return record

    def _pick_port(self) -> int:
        """A free TCP port on 127.0.0.1, not one handed to a recent instance."""
        with self._port_lock:
            for _ in range(64):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                    sock.bind((HOST, 0))
                    port: int = sock.getsockname()[1]
                if port not in self._recent_ports:
                    break
            self._recent_ports.append(port)
            return port

    # -- list ----------------------------------------------------------------------------

    async def list(self, *, node: NodeKey | None = None) -> list[Observed]:
        """Every instance with a state file (running or exited), optionally of one node."""
        return await asyncio.to_thread(self._list_sync, node)

    def _list_sync(self, node: NodeKey | None) -> builtins.list[Observed]:
        if not self._state_dir.is_dir():
            return []
        seen: builtins.list[Observed] = []
        for path in sorted(self._state_dir.glob("*.json")):
            record = self._load_record(path)
            if record is None or (node is not None and record.node != node):
                continue
            phase, exit_code = _probe(record)
            seen.append(_observed(record, phase, exit_code))
        return seen

    # -- delete --------------------------------------------------------------------------

    async def delete(self, instance_id: InstanceId, *, grace_s: float) -> None:
        """SIGTERM the instance's process group, SIGKILL after ``grace_s``; forget it.

        The log file stays (see ``remove_logs``)."""
        record = await asyncio.to_thread(self._read_record, instance_id)
        if record is not None:
            if await asyncio.to_thread(_signal_group, record, signal.SIGTERM):
                is_gone = await _wait_group_gone(record, grace_s)
                if not is_gone and await asyncio.to_thread(_signal_group, record, signal.SIGKILL):
                    is_gone = await _wait_group_gone(record, KILL_WAIT_S)
                if not is_gone:
                    log.warning("instance outlived SIGKILL", instance=instance_id, pid=record.pid)
            await asyncio.to_thread(self._forget, record)
            log.info("instance deleted", node=str(record.node), instance=instance_id)
        self._cpu_probes.pop(instance_id, None)

    def _forget(self, record: InstanceRecord) -> None:
        self._state_path(record.instance_id).unlink(missing_ok=True)
        with _children_lock:
            child = _children.get(record.pid)
            if child is not None and child.popen.returncode is not None:
                del _children[record.pid]

    async def remove_logs(self, instance_id: InstanceId) -> None:
        """Remove an instance's log file (when its node is deleted)."""
        await asyncio.to_thread(self._log_path(instance_id).unlink, missing_ok=True)

    # -- logs ----------------------------------------------------------------------------

    async def logs(
        self, instance_id: InstanceId, *, follow: bool, tail: int | None = None
    ) -> AsyncIterator[str]:
        """Lines of the instance's output; ``follow`` keeps going until it is deleted."""
        log_path = self._log_path(instance_id)
        state_path = self._state_path(instance_id)
        if not await asyncio.to_thread(log_path.exists):
            raise NotFound(f"instance {instance_id!r} not found in the local runtime")
        reader = _LogReader(log_path)
        if tail is not None:
            for line in await asyncio.to_thread(reader.read_tail, tail):
                yield line
        while True:
            is_deleted = follow and not await asyncio.to_thread(state_path.exists)
            lines, is_at_end = await asyncio.to_thread(reader.read_lines)
            for line in lines:
                yield line
            if not is_at_end:
                continue
            if not follow or is_deleted:
                break
            await asyncio.sleep(LOG_POLL_PERIOD_S)
        rest = reader.flush()
        if rest is not None:
            yield rest

    # -- stats ---------------------------------------------------------------------------

    async def stats(self, instance_id: InstanceId) -> InstanceStats:
        """CPU percent (since the previous call) and resident memory of the process tree."""
        record = await asyncio.to_thread(self._read_record, instance_id)
        if record is None:
            return InstanceStats()
        return await asyncio.to_thread(self._measure, record)

    def _measure(self, record: InstanceRecord) -> InstanceStats:
        probes = self._cpu_probes.setdefault(record.instance_id, {})
        try:
            leader = probes.get(record.pid) or psutil.Process(record.pid)
            if not _same_process(leader, record.create_time):
                return InstanceStats()
            processes = [leader, *leader.children(recursive=True)]
        except psutil.Error:
            return InstanceStats()
        cpu_percent, memory_bytes = 0.0, 0
        alive: dict[int, psutil.Process] = {}
        for process in processes:
            process = probes.get(process.pid, process)
            try:
                with process.oneshot():
                    if process.status() == psutil.STATUS_ZOMBIE:
                        continue
                    cpu_percent += process.cpu_percent(interval=None)
                    memory_bytes += process.memory_info().rss
            except psutil.Error:
                continue
            alive[process.pid] = process
        self._cpu_probes[record.instance_id] = alive
        if not alive:
            return InstanceStats()
        return InstanceStats(cpu_percent=cpu_percent, memory_bytes=memory_bytes)

    async def close(self) -> None:
        """Forget cached handles. Instances keep running: stopping them is the controller's job."""
        self._cpu_probes.clear()


def _observed(record: InstanceRecord, phase: Phase, exit_code: int | None) -> Observed:
    return Observed(
        instance_id=record.instance_id,
        node=record.node,
        phase=phase,
        endpoint=record.endpoint,
        exit_code=exit_code,
        generation=record.generation,
        limits_applied=record.limits_applied,
        limits_not_applied=record.limits_not_applied,
    )


def _own_child(record: InstanceRecord) -> _Child | None:
    with _children_lock:
        child = _children.get(record.pid)
    if child is None or abs(child.create_time - record.create_time) >= CREATE_TIME_TOLERANCE_S:
        return None
    return child


def _probe(record: InstanceRecord) -> tuple[Phase, int | None]:
    """Is the instance's process running? If not, its exit code when this process knows it."""
    child = _own_child(record)
    if child is not None:
        returncode = child.popen.poll()
        return ("running", None) if returncode is None else ("exited", _exit_code(returncode))
    try:
        process = psutil.Process(record.pid)
        if _same_process(process, record.create_time) and (
            process.status() != psutil.STATUS_ZOMBIE
        ):
            return "running", None
    except psutil.Error:
        pass
    return "exited", None


def _leader_is_stranger(record: InstanceRecord) -> bool:
    """True when the instance's pid now belongs to another process (pid reuse)."""
    try:
        return not _same_process(psutil.Process(record.pid), record.create_time)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


def _kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _signal_group(record: InstanceRecord, sig: int) -> bool:
    """Send ``sig`` to the instance's process group; False when there was nobody to signal.

    While any member of the group lives, the kernel does not hand its number out as a new
    pid, so when the pid belongs to a stranger, the group is gone."""
    if _leader_is_stranger(record):
        return False
    try:
        return _kill_group(record.pid, sig)
    except PermissionError:
        log.warning("not allowed to signal instance", instance=record.instance_id, pid=record.pid)
        return False


def _is_group_gone(record: InstanceRecord) -> bool:
    """True when no process of the instance's group is alive (zombies don't count)."""
    child = _own_child(record)
    if child is not None:
        child.popen.poll()
    if not _signal_group(record, 0):
        return True
    if _probe(record)[0] == "running":
        return False
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == record.pid and (
                process.info["status"] != psutil.STATUS_ZOMBIE
            ):
                return False
        except OSError:
            continue
    return True


async def _wait_group_gone(record: InstanceRecord, timeout_s: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        if await asyncio.to_thread(_is_group_gone, record):
            return True
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(DELETE_POLL_PERIOD_S)


class _LogReader:
    """Reads a log file forward from an offset, one complete line at a time."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._partial = b""

    def read_tail(self, count: int) -> list[str]:
        """The last ``count`` lines; later reads continue after them."""
        try:
            with open(self._path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                start, data = size, b""
                while start > 0 and data.count(b"\n") <= count:
                    step = min(LOG_CHUNK_BYTES, start)
                    start -= step
                    f.seek(start)
                    data = f.read(step) + data
        except FileNotFoundError:  # removed by remove_logs
            return []
        self._offset = size
        complete, newline, partial = data.rpartition(b"\n")
        lines = complete.split(b"\n") if newline else []
        self._partial = partial if count > 0 else b""
        keep = count - 1 if partial else count
        return [_decode(line) for line in lines[-keep:]] if keep > 0 else []

    def read_lines(self) -> tuple[list[str], bool]:
        """Complete lines written since the last read, and whether the end was reached."""
        try:
            with open(self._path, "rb") as f:
                if f.seek(0, os.SEEK_END) < self._offset:  # truncated: start over
                    self._offset, self._partial = 0, b""
                f.seek(self._offset)
                data = f.read(LOG_CHUNK_BYTES)
        except FileNotFoundError:  # removed by remove_logs
            return [], True
        self._offset += len(data)
        *complete, self._partial = (self._partial + data).split(b"\n")
        return [_decode(line) for line in complete], len(data) < LOG_CHUNK_BYTES

    def flush(self) -> str | None:
        """The last line when it has no newline at its end."""
        rest, self._partial = self._partial, b""
        return _decode(rest) if rest else None


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").removesuffix("\r")
