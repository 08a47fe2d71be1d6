"""LocalRuntime: creates, lists, deletes and measures instances that are processes on this
machine, with their state files and logs under ``state_dir``."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import os
import resource
import signal
import socket
import subprocess
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final

import psutil
import structlog

from pier.domain.errors import InvalidSpec, NotFound
from pier.domain.names import InstanceId, NodeKey
from pier.runtimes.base import (
    ImagesNotSupported,
    InstanceNotRunnable,
    InstanceSpec,
    InstanceStats,
    Observed,
    Runtime,
)
from pier.runtimes.local import forks
from pier.runtimes.local.limits import LimitPlan, available_cpus, plan_limits
from pier.runtimes.local.logs import (
    LOG_MAX_BYTES,
    LOG_POLL_PERIOD_S,
    LOG_ROTATE_PERIOD_S,
    LogReader,
    read_all_lines,
    rotate_if_large,
    rotated_path,
)
from pier.runtimes.local.processes import (
    AdoptedProcesses,
    Child,
    Phase,
    children,
    children_lock,
    create_time_of,
    kill_group,
    probe,
    same_process,
    signal_group,
    wait_group_gone,
)
from pier.runtimes.local.state import HOST, InstanceState
from pier.sandbox import Sandbox, default_root

log = structlog.get_logger("pier.runtimes.local")

KILL_WAIT_S: Final = 5.0
TREE_REFRESH_S: Final = 60.0
"""How long an instance's measured process tree is kept before its children are looked
up again (which reads every process on the machine)."""
PARENTS_FRESH_S: Final = 5.0
"""How long one look at every process's parent serves the trees looked up meanwhile."""
NOT_RUNNABLE: Final = (FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError)
"""Why a command can never start as it is written (other OSErrors may pass: EAGAIN)."""
"""After SIGKILL, how long ``delete`` waits for the group to disappear."""


def _check_instance_id(instance_id: str) -> None:
    if not instance_id or "/" in instance_id or "\0" in instance_id or instance_id[0] == ".":
        raise InvalidSpec("instance_id", f"{instance_id!r} cannot name a local instance")


class LocalRuntime:
    """Instances as processes on this machine, state under ``state_dir``."""

    name = "local"

    def __init__(
        self,
        state_dir: Path,
        *,
        log_max_bytes: int = LOG_MAX_BYTES,
        log_rotate_period_s: float = LOG_ROTATE_PERIOD_S,
        sandbox: Sandbox | None = None,
        fork_model_servers: bool = True,
    ) -> None:
        """``log_max_bytes``: an instance's log is rotated past this size, looked at every
        ``log_rotate_period_s`` by a task of the runtime's own (see logs.py).
        ``sandbox``: what instances run in (see pier.sandbox); by default one of their own
        for this ``state_dir``, under the default sandbox root. ``fork_model_servers``:
        start pier's model server as a fork of a process that has imported it (see
        forks.py) rather than an exec."""
        self._state_dir = Path(state_dir)
        if sandbox is None:
            key = hashlib.sha256(str(self._state_dir.resolve()).encode()).hexdigest()[:12]
            sandbox = Sandbox.prepare(default_root() / key)
        self._sandbox = sandbox
        self._fork_model_servers = fork_model_servers
        self._log_max_bytes = log_max_bytes
        self._log_rotate_period_s = log_rotate_period_s
        self._log_rotator: asyncio.Task[None] | None = None
        with contextlib.suppress(RuntimeError):  # no event loop yet: create() starts it
            self._start_log_rotator()
        self._cpu_cursor = 0
        self._port_lock = threading.Lock()
        self._recent_ports: deque[int] = deque(maxlen=256)
        self._cpu_probes: dict[InstanceId, dict[int, psutil.Process]] = {}
        self._tree_read_at: dict[InstanceId, float] = {}
        """When each instance's process tree was last looked up (time.monotonic)."""
        self._parents: dict[int, builtins.list[int]] | None = None
        """Every process's children by pid, as looked up at ``_parents_at``."""
        self._parents_at = 0.0
        self._adopted = AdoptedProcesses()
        """The processes of instances this OS process did not start, watched."""
        self._listed: dict[str, tuple[tuple[int, int, int], InstanceState]] = {}
        """By state file name: its (inode, mtime, size) when last listed, and its record.
        A state file is replaced whole (os.replace), so an unchanged stamp is an
        unchanged record: listing reads only the files that changed."""
        self._observed: dict[str, tuple[InstanceState, Observed]] = {}
        """By state file name: the record last listed and what was observed of it."""

    # -- files ---------------------------------------------------------------------------

    def _state_path(self, instance_id: InstanceId) -> Path:
        _check_instance_id(instance_id)
        return self._state_dir / f"{instance_id}.json"

    def _log_path(self, instance_id: InstanceId) -> Path:
        _check_instance_id(instance_id)
        return self._state_dir / f"{instance_id}.log"

    def _read_record(self, instance_id: InstanceId) -> InstanceState | None:
        return self._load_record(self._state_path(instance_id))

    @staticmethod
    def _load_record(path: Path) -> InstanceState | None:
        try:
            return InstanceState.from_json(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("unreadable instance state file", path=str(path), error=str(e))
            return None

    def _write_record(self, record: InstanceState) -> None:
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
            raise InstanceNotRunnable("command", "the local runtime needs a command to run")
        existing = await asyncio.to_thread(self._read_record, spec.instance_id)
        if existing is not None:
            phase, exit_code = await asyncio.to_thread(probe, existing)
            if phase == "running":
                return _observed(existing, phase, exit_code)
        limits = plan_limits(
            spec.configuration,
            available_cpus=available_cpus(),
            first_cpu_index=self._cpu_cursor,
            memory_hard_limit_bytes=resource.getrlimit(resource.RLIMIT_DATA)[1],
        )
        self._cpu_cursor += len(limits.cpus or ())
        self._start_log_rotator()
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

    def _workdir(self, instance_id: InstanceId) -> Path:
        _check_instance_id(instance_id)
        return self._sandbox.root / instance_id

    def _start(self, spec: InstanceSpec, limits: LimitPlan) -> InstanceState:
        self._state_dir.mkdir(parents=True, exist_ok=True)
        port = self._pick_port()
        extra_ports = {extra: self._pick_port() for extra in spec.extra_ports}
        workdir = self._workdir(spec.instance_id)
        self._sandbox.remove_dir(workdir)  # left by an earlier process of this instance
        self._sandbox.make_dir(spec.instance_id, {m.target: m.source for m in spec.mounts})
        fills = {
            "{port}": str(port),
            "{workdir}": str(workdir),
            **{f"{{port:{extra}}}": str(host) for extra, host in extra_ports.items()},
        }
        argv = [_fill(arg, fills) for arg in (*spec.command, *spec.args)]
        env = {**spec.env, "PIER_PORT": str(port)}
        is_model_server = forks.is_model_server(argv)
        if is_model_server:
            env = forks.with_model_server_env(env)
        env = self._sandbox.environment(env, home=workdir)
        with open(self._log_path(spec.instance_id), "ab") as log_file:
            forked = None
            if is_model_server and self._fork_model_servers:
                forked = self._fork(argv, env, workdir, log_file, limits)
            handle, create_time = forked or (self._exec(argv, env, workdir, log_file, limits), None)
        try:
            if create_time is None:  # an exec'd child, or a forked one /proc did not show
                create_time = psutil.Process(handle.pid).create_time()
            with children_lock:
                children[handle.pid] = Child(create_time, handle)
            record = InstanceState(
                instance_id=spec.instance_id,
                node=spec.node,
                generation=spec.generation,
                pid=handle.pid,
                create_time=create_time,
                port=port,
                extra_ports=extra_ports,
                limits_applied=limits.applied,
                limits_not_applied=limits.not_applied,
            )
            self._write_record(record)
        except BaseException:
            kill_group(handle.pid)
            handle.wait(KILL_WAIT_S)
            raise
        return record

    def _exec(
        self,
        argv: builtins.list[str],
        env: dict[str, str],
        workdir: Path,
        log_file: BinaryIO,
        limits: LimitPlan,
    ) -> subprocess.Popen[bytes]:
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=limits.preexec(),
                **self._sandbox.popen_options(workdir),
            )
        except (OSError, subprocess.SubprocessError) as e:
            self._sandbox.remove_dir(workdir)
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            log_file.write(f"pier: cannot start {argv[0]}: {reason}\n".encode())
            refused = InstanceNotRunnable if isinstance(e, NOT_RUNNABLE) else InvalidSpec
            raise refused("command", f"cannot start {argv[0]!r}: {reason}") from e

    def _fork(
        self,
        argv: builtins.list[str],
        env: dict[str, str],
        workdir: Path,
        log_file: BinaryIO,
        limits: LimitPlan,
    ) -> tuple[forks.Forked, float | None] | None:
        """pier's model server forked from the sandbox's fork server (see forks.py), and its
        creation time as the fork server read it; None when it must be exec'd: its
        environment differs where a fork would not see it, or no fork server can start one
        now."""
        if not forks.fork_compatible(env, self._sandbox):
            return None
        server = forks.fork_servers.for_sandbox(self._sandbox)
        if server is None:
            return None
        try:
            child, start_ticks = server.spawn(
                argv[len(forks.MODEL_SERVER) :],
                env=env,
                cwd=workdir,
                log_fd=log_file.fileno(),
                cpus=limits.cpus,
                memory_bytes=limits.memory_bytes,
            )
        except forks.ForkServerGone as e:
            log.warning("model server exec'd: the fork server failed", reason=str(e))
            return None
        except forks.SetUpFailed as e:
            self._sandbox.remove_dir(workdir)
            log_file.write(f"pier: cannot start the model server: {e}\n".encode())
            raise InvalidSpec("command", f"cannot start the model server: {e}") from e
        return child, None if start_ticks is None else create_time_of(start_ticks)

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
        listed: dict[str, tuple[tuple[int, int, int], InstanceState]] = {}
        with os.scandir(self._state_dir) as entries:
            files = sorted((e.name, e) for e in entries if e.name.endswith(".json"))
        for name, entry in files:
            record = self._listed_record(name, entry, listed)
            if record is None or (node is not None and record.node != node):
                continue
            phase, exit_code = probe(record, self._adopted)
            known = self._observed.get(name)
            # a new value only when it changed: the controller compares them each tick
            if (
                known is None
                or known[0] is not record
                or known[1].phase != phase
                or known[1].exit_code != exit_code
            ):
                known = self._observed[name] = (record, _observed(record, phase, exit_code))
            seen.append(known[1])
        if node is None:
            self._listed = listed
            kept = list(self._observed.items())  # one step: another list may be adding
            self._observed = {n: o for n, o in kept if n in listed}
            self._adopted.keep_only({record.pid for _, record in listed.values()})
        return seen

    def _listed_record(
        self,
        name: str,
        entry: os.DirEntry[str],
        listed: dict[str, tuple[tuple[int, int, int], InstanceState]],
    ) -> InstanceState | None:
        """The record in a state file, read again only if the file changed since."""
        try:
            stat = entry.stat()
        except FileNotFoundError:
            return None
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        known = self._listed.get(name)
        record = known[1] if known is not None and known[0] == stamp else None
        if record is None:
            record = self._load_record(Path(entry.path))
        if record is not None:
            listed[name] = (stamp, record)
        return record

    # -- log rotation --------------------------------------------------------------------

    def _start_log_rotator(self) -> None:
        """Start the task that keeps logs bounded, once (RuntimeError outside a loop)."""
        if self._log_rotator is None or self._log_rotator.done():
            self._log_rotator = asyncio.get_running_loop().create_task(
                self._rotate_logs_forever(), name="local runtime log rotation"
            )

    async def _rotate_logs_forever(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self._rotate_large_logs)
            except OSError as e:
                log.warning("instance log rotation failed", error=str(e))
            await asyncio.sleep(self._log_rotate_period_s)

    def _rotate_large_logs(self) -> None:
        """Rotate every instance's log (adopted ones' too) that is over the limit."""
        if not self._state_dir.is_dir():
            return
        for path in sorted(self._state_dir.glob("*.json")):
            instance_id = InstanceId(path.stem)
            if rotate_if_large(self._log_path(instance_id), self._log_max_bytes):
                log.info("instance log rotated", instance=instance_id)

    # -- delete --------------------------------------------------------------------------

    async def delete(self, instance_id: InstanceId, *, grace_s: float) -> None:
        """SIGTERM the instance's process group, SIGKILL after ``grace_s``; forget it.

        The log file stays (see ``remove_logs``)."""
        record = await asyncio.to_thread(self._read_record, instance_id)
        if record is not None:
            if await asyncio.to_thread(signal_group, record, signal.SIGTERM):
                is_gone = await wait_group_gone(record, grace_s)
                if not is_gone and await asyncio.to_thread(signal_group, record, signal.SIGKILL):
                    is_gone = await wait_group_gone(record, KILL_WAIT_S)
                if not is_gone:
                    log.warning("instance outlived SIGKILL", instance=instance_id, pid=record.pid)
            await asyncio.to_thread(self._forget, record)
            log.info("instance deleted", node=str(record.node), instance=instance_id)
        self._cpu_probes.pop(instance_id, None)
        self._tree_read_at.pop(instance_id, None)

    def _forget(self, record: InstanceState) -> None:
        self._state_path(record.instance_id).unlink(missing_ok=True)
        self._sandbox.remove_dir(self._workdir(record.instance_id))
        with children_lock:
            child = children.get(record.pid)
            if child is not None and child.popen.returncode is not None:
                del children[record.pid]

    async def remove_logs(self, instance_id: InstanceId) -> None:
        """Remove an instance's log files (when its node is deleted)."""
        path = self._log_path(instance_id)
        await asyncio.to_thread(path.unlink, missing_ok=True)
        await asyncio.to_thread(rotated_path(path).unlink, missing_ok=True)

    # -- logs ----------------------------------------------------------------------------

    async def logs(
        self, instance_id: InstanceId, *, follow: bool, tail: int | None = None
    ) -> AsyncIterator[str]:
        """Lines of the instance's output, the rotated copy's first; ``follow`` keeps going
        until the instance is deleted."""
        log_path = self._log_path(instance_id)
        state_path = self._state_path(instance_id)
        if not await asyncio.to_thread(log_path.exists):
            raise NotFound(f"instance {instance_id!r} not found in the local runtime")
        reader = LogReader(log_path)
        if tail is None:
            for line in await asyncio.to_thread(read_all_lines, rotated_path(log_path)):
                yield line
        else:
            lines = await asyncio.to_thread(reader.read_tail, tail)
            if len(lines) < tail:
                older = await asyncio.to_thread(read_all_lines, rotated_path(log_path))
                lines = older[max(0, len(older) - (tail - len(lines))) :] + lines
            for line in lines:
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
        return (await self.stats_of([instance_id]))[instance_id]

    async def stats_of(self, instance_ids: Sequence[InstanceId]) -> dict[InstanceId, InstanceStats]:
        """``stats`` of each instance, in one hop to a worker thread (the sampler reads
        every instance's at once)."""
        return await asyncio.to_thread(self._stats_sync, instance_ids)

    def _stats_sync(self, instance_ids: Sequence[InstanceId]) -> dict[InstanceId, InstanceStats]:
        stats = {}
        for instance_id in instance_ids:
            listed = self._listed.get(self._state_path(instance_id).name)  # the last list's
            record = listed[1] if listed is not None else self._read_record(instance_id)
            stats[instance_id] = InstanceStats() if record is None else self._measure(record)
        return stats

    def _measure(self, record: InstanceState) -> InstanceStats:
        """The processes measured are the instance's tree as last looked up (every
        TREE_REFRESH_S): a child started since is counted from the next look-up."""
        instance_id = record.instance_id
        probes = self._cpu_probes.setdefault(instance_id, {})
        now = time.monotonic()
        try:
            leader = probes.get(record.pid) or psutil.Process(record.pid)
            if not same_process(leader, record.create_time):
                return InstanceStats()
            read_at = self._tree_read_at.get(instance_id)
            if record.pid in probes and read_at is not None and now - read_at < TREE_REFRESH_S:
                processes = list(probes.values())
            else:
                processes = [leader, *self._descendants(leader.pid, now)]
                self._tree_read_at[instance_id] = now
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

    def _descendants(self, pid: int, now: float) -> builtins.list[psutil.Process]:
        """The processes below ``pid``, from one look at every process's parent shared by
        the trees looked up within PARENTS_FRESH_S (psutil's ``children`` looks at every
        process once per tree: once per instance)."""
        if self._parents is None or now - self._parents_at >= PARENTS_FRESH_S:
            parents: dict[int, builtins.list[int]] = defaultdict(builtins.list)
            for process in psutil.process_iter(["ppid"]):
                parents[process.info["ppid"]].append(process.pid)
            self._parents, self._parents_at = parents, now
        found: builtins.list[psutil.Process] = []
        below = builtins.list(self._parents.get(pid, ()))
        while below:
            child = below.pop()
            with contextlib.suppress(psutil.Error):
                found.append(psutil.Process(child))
                below += self._parents.get(child, ())
        return found

    # -- images --------------------------------------------------------------------------

    async def resolve_image(
        self,
        ref: str,
        *,
        auth: dict[str, str] | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> str:
        """The local runtime runs commands, not images: ImagesNotSupported."""
        raise ImagesNotSupported(f"the local runtime cannot pull images ({ref})")

    async def close(self) -> None:
        """Stop the log rotation, forget cached handles, and the sandbox's directory once
        no instance has one in it. Instances keep running: stopping them is the
        controller's job."""
        if self._log_rotator is not None:
            self._log_rotator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._log_rotator
            self._log_rotator = None
        self._cpu_probes.clear()
        self._tree_read_at.clear()
        self._adopted.keep_only(set())
        with contextlib.suppress(OSError):
            self._sandbox.root.rmdir()


if TYPE_CHECKING:

    def _implements_runtime(runtime: LocalRuntime) -> Runtime:
        return runtime  # mypy holds LocalRuntime to the Runtime protocol here


def _fill(arg: str, fills: dict[str, str]) -> str:
    """``arg`` with the runtime's placeholders replaced: ``{port}``, ``{workdir}``, and
    ``{port:N}``, the port given to the spec's extra port N."""
    for placeholder, value in fills.items():
        arg = arg.replace(placeholder, value)
    return arg


def _observed(record: InstanceState, phase: Phase, exit_code: int | None) -> Observed:
    return Observed(
        instance_id=record.instance_id,
        node=record.node,
        phase=phase,
        endpoint=record.endpoint,
        port_endpoints=record.port_endpoints,
        exit_code=exit_code,
        generation=record.generation,
        limits_applied=record.limits_applied,
        limits_not_applied=record.limits_not_applied,
        pid=None if phase == "exited" else record.pid,
    )
