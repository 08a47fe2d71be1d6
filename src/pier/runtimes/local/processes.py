"""Processes of local instances: the process-wide table of the children this OS process
started, and probing, signalling and waiting for an instance's process group."""

from __future__ import annotations

import asyncio
import functools
import os
import select
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import psutil
import structlog

from pier.runtimes.local.forks import Forked
from pier.runtimes.local.state import InstanceState

log = structlog.get_logger("pier.runtimes.local")

DELETE_POLL_PERIOD_S: Final = 0.05
"""How often ``delete`` checks whether the process group is gone."""
CREATE_TIME_TOLERANCE_S: Final = 0.01

Phase = Literal["created", "running", "exited"]


@dataclass(frozen=True, slots=True)
class Child:
    create_time: float
    popen: subprocess.Popen[bytes] | Forked
    """Its own Popen when this OS process exec'd it; its fork server's report when forked."""


children: dict[int, Child] = {}
"""pid -> handle of every instance process this OS process started (see the package
docstring)."""
children_lock = threading.Lock()


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def same_process(process: psutil.Process, create_time: float) -> bool:
    return bool(abs(process.create_time() - create_time) < CREATE_TIME_TOLERANCE_S)


def _own_child(record: InstanceState) -> Child | None:
    with children_lock:
        child = children.get(record.pid)
    if child is None or abs(child.create_time - record.create_time) >= CREATE_TIME_TOLERANCE_S:
        return None
    return child


def probe(
    record: InstanceState, adopted: AdoptedProcesses | None = None
) -> tuple[Phase, int | None]:
    """Is the instance's process running? If not, its exit code when this process knows it.
    ``adopted``: where a process this one did not start is watched (None: /proc is read)."""
    child = _own_child(record)
    if child is not None:
        returncode = child.popen.poll()
        if returncode is not None:
            return "exited", _exit_code(returncode)
        if not (isinstance(child.popen, Forked) and child.popen.orphaned):
            return "running", None
    if adopted is not None:
        running = adopted.is_running(record.pid, record.create_time)
    else:
        running = _is_same_and_alive(record.pid, record.create_time)
    if running is not None:
        return ("running", None) if running else ("exited", None)
    try:
        process = psutil.Process(record.pid)
        if same_process(process, record.create_time) and (process.status() != psutil.STATUS_ZOMBIE):
            return "running", None
    except psutil.Error:
        pass
    return "exited", None


class AdoptedProcesses:
    """Whether processes this OS process did not start (adopted instances) still run,
    probed on every tick. On Linux each is checked once against its creation time
    (``/proc/PID/stat``), then watched with a pidfd, which turns readable when the process
    exits (zombies included): a check is then one poll, where psutil's ``Process`` reads
    /proc two or three times. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fds: dict[tuple[int, float], int] = {}
        """By (pid, creation time as the instance's record has it): its pidfd."""

    def is_running(self, pid: int, create_time: float) -> bool | None:
        """None where this cannot tell (no /proc): ask psutil."""
        key = (pid, create_time)
        with self._lock:  # polled under the lock: a pidfd is never closed while in use
            fd = self._fds.get(key)
            if fd is not None and _has_exited(fd):
                del self._fds[key]
                os.close(fd)
                return False
        if fd is not None:
            return True
        running = _is_same_and_alive(pid, create_time)
        if not running or not hasattr(os, "pidfd_open"):
            return running
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return _is_same_and_alive(pid, create_time)
        if not _is_same_and_alive(pid, create_time):  # the pid changed hands meanwhile
            os.close(fd)
            return False
        with self._lock:
            known = self._fds.setdefault(key, fd)
        if known != fd:
            os.close(fd)
        return True

    def keep_only(self, pids: set[int]) -> None:
        """Close the pidfds of processes no instance record names any more."""
        with self._lock:
            for key in [key for key in self._fds if key[0] not in pids]:
                os.close(self._fds.pop(key))


def _has_exited(pidfd: int) -> bool:
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))


def _is_same_and_alive(pid: int, create_time: float) -> bool | None:
    read = _proc_stat(pid)
    if read is None:
        return None
    state, started = read
    return state not in "ZX" and abs(started - create_time) < CREATE_TIME_TOLERANCE_S


def _proc_stat(pid: int) -> tuple[str, float] | None:
    """The state letter and creation time (seconds since the epoch, as psutil computes
    it) of ``pid`` from ``/proc/PID/stat``; ("X", 0.0) when there is no such process; None
    where there is no /proc to read (then psutil asks the OS its own way).

    psutil's ``Process`` reads the same file two or three times (here: 140 us against 34)."""
    if _CLOCK_TICKS is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return "X", 0.0
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()  # the name, in brackets, may hold spaces
    try:
        state, start_ticks = fields[0].decode(), int(fields[19])
    except (IndexError, ValueError):
        return None
    return state, _boot_time() + start_ticks / _CLOCK_TICKS


def create_time_of(start_ticks: int) -> float | None:
    """A creation time in clock ticks since boot (``/proc/PID/stat``) as psutil has it,
    seconds since the epoch; None where there is no /proc."""
    if _CLOCK_TICKS is None:
        return None
    return _boot_time() + start_ticks / _CLOCK_TICKS


@functools.cache
def _boot_time() -> float:
    """Read once, as psutil keeps it for its own creation times."""
    return float(psutil.boot_time())


def _clock_ticks() -> int | None:
    if not Path("/proc/self/stat").exists():
        return None
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        return None


_CLOCK_TICKS: Final = _clock_ticks()


def _leader_is_stranger(record: InstanceState) -> bool:
    """True when the instance's pid now belongs to another process (pid reuse)."""
    try:
        return not same_process(psutil.Process(record.pid), record.create_time)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def signal_group(record: InstanceState, sig: int) -> bool:
    """Send ``sig`` to the instance's process group; False when there was nobody to signal.

    While any member of the group lives, the kernel does not hand its number out as a new
    pid, so when the pid belongs to a stranger, the group is gone."""
    if _leader_is_stranger(record):
        return False
    try:
        return kill_group(record.pid, sig)
    except PermissionError:
        log.warning("not allowed to signal instance", instance=record.instance_id, pid=record.pid)
        return False


def _is_group_gone(record: InstanceState) -> bool:
    """True when no process of the instance's group is alive (zombies don't count)."""
    child = _own_child(record)
    if child is not None:
        child.popen.poll()
    if not signal_group(record, 0):
        return True
    if probe(record)[0] == "running":
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


async def wait_group_gone(record: InstanceState, timeout_s: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        if await asyncio.to_thread(_is_group_gone, record):
            return True
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(DELETE_POLL_PERIOD_S)
