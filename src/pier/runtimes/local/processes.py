"""Processes of local instances: the process-wide table of the children this OS process
started, and probing, signalling and waiting for an instance's process group."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
from dataclasses import dataclass
from typing import Final, Literal

import psutil
import structlog

from pier.runtimes.local.state import InstanceState

log = structlog.get_logger("pier.runtimes.local")

DELETE_POLL_PERIOD_S: Final = 0.05
"""How often ``delete`` checks whether the process group is gone."""
CREATE_TIME_TOLERANCE_S: Final = 0.01

Phase = Literal["created", "running", "exited"]


@dataclass(frozen=True, slots=True)
class Child:
    create_time: float
    popen: subprocess.Popen[bytes]


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


def probe(record: InstanceState) -> tuple[Phase, int | None]:
    """Is the instance's process running? If not, its exit code when this process knows it."""
    child = _own_child(record)
    if child is not None:
        returncode = child.popen.poll()
        return ("running", None) if returncode is None else ("exited", _exit_code(returncode))
    try:
        process = psutil.Process(record.pid)
        if same_process(process, record.create_time) and (process.status() != psutil.STATUS_ZOMBIE):
            return "running", None
    except psutil.Error:
        pass
    return "exited", None


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
