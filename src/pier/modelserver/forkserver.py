"""``python -m pier.modelserver.forkserver``: start model servers by forking one process
that has already imported what they need.

A model server started with ``exec`` spends about half a second of CPU importing numpy,
onnxruntime, structlog and the server itself before it reads its model; a hundred nodes
created at once spend a minute of CPU on it. This process imports all of that once, then
forks a child per instance: the child starts in a few milliseconds of CPU and shares the
imported pages with every other child.

Wire (the local runtime's end: pier.runtimes.local.forks). The control socket is a
``SOCK_SEQPACKET`` socket handed over as ``--fd``; each message is one JSON object:

* to this process: ``{"op": "spawn", "id": N}`` with two file descriptors, the
  instance's log file and the child's end of a set-up socket;
* from it: ``{"op": "ready", "pid": P}`` once the imports are done;
  ``{"op": "spawned", "id": N, "pid": P, "start_ticks": T}`` (``T``: field 22 of
  ``/proc/P/stat``, the process's creation time) or ``{"op": "failed", "id": N,
  "error": "..."}``; ``{"op": "exited", "pid": P, "returncode": R}`` when a child ends
  (``R`` as subprocess has it: negative for a signal).

The set-up socket carries what the child becomes (``{"argv", "env", "cwd", "cpus",
"memory_bytes"}``, after its length in 8 bytes) from pier straight to the child, after
the fork: this process never holds an instance's environment (its secrets), so no later
child inherits one in its copy of this process's memory. The child answers ``READY``
(or why it could not set itself up) on the same socket, and runs the model server's
``main`` once pier answers ``GO``.

This process exits when its control socket closes (`pier up` stopped or died); its
children run on, as any instance does when pier stops.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import resource
import select
import shlex
import signal
import socket
import sys
import tempfile
import traceback
from typing import Any, Final

MESSAGE_MAX_BYTES: Final = 4096
"""A control message's size limit; requests carry only an id."""
SETUP_MAX_BYTES: Final = 1 << 20
"""What a child reads of its set-up request at most (argv and environment)."""
PRELOAD: Final = (
    "pier.modelserver.__main__",
    "pier.modelserver.loaders.onnx",
    "pier.modelserver.loaders.python",
    "pier.modelserver.loaders.sklearn",
    "setproctitle",
)
"""Imported before the first fork; a module that fails to import is left to the child,
which then fails as an exec'd model server would."""
SETUP_TIMEOUT_S: Final = 60.0
"""How long a child waits on pier during its set-up before it gives up (and exits)."""
READY: Final = b"ok\n"
"""What a child says once it is set up; anything else it says is why it could not be."""
GO: Final = b"go"
"""pier's answer to READY once the fork server told it the child's pid: only then does the
child run the model server. A child whose pier gave up on it (its fork server's answer
never came) ends instead, so no instance runs twice."""
SPAWN_EXIT_STATUS: Final = 127
"""A child that could not set itself up exits with this, as a shell does."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pier.modelserver.forkserver")
    parser.add_argument("--fd", type=int, required=True, help="the control socket's descriptor")
    args = parser.parse_args(argv)
    control = socket.socket(fileno=args.fd)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as exc:  # the child meets the same error and reports it
            print(f"pier forkserver: cannot preload {name}: {exc}", file=sys.stderr)
    _set_title(["-m", "pier.modelserver.forkserver", "--fd", str(args.fd)])
    gc.freeze()  # the children's collections leave these objects (and their pages) alone
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
    signal.set_wakeup_fd(wake_write)
    server = _Server(control, (wake_read, wake_write))
    server.send({"op": "ready", "pid": os.getpid()})
    server.serve()
    return 0


class _Server:
    def __init__(self, control: socket.socket, wake: tuple[int, int]) -> None:
        self._control = control
        self._wake = wake
        self._spawned: set[int] = set()

    def send(self, message: dict[str, Any]) -> None:
        self._control.send(json.dumps(message).encode())

    def serve(self) -> None:
        """Spawn on request and report exits, until the control socket closes."""
        with contextlib.suppress(ConnectionError):  # pier is gone
            self._serve()

    def _serve(self) -> None:
        while True:
            readable, _, _ = select.select([self._control.fileno(), self._wake[0]], [], [])
            if self._wake[0] in readable:
                while _drain(self._wake[0]):
                    pass
            self._reap()
            if self._control.fileno() in readable:
                data, fds, _flags, _address = socket.recv_fds(self._control, MESSAGE_MAX_BYTES, 2)
                if not data:
                    return
                self._handle(data, fds)

    def _handle(self, data: bytes, fds: list[int]) -> None:
        try:
            request = json.loads(data)
            request_id = request["id"]
        except (ValueError, KeyError, TypeError):
            for fd in fds:
                os.close(fd)
            return
        if request.get("op") != "spawn" or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            self.send({"op": "failed", "id": request_id, "error": "a spawn needs two descriptors"})
            return
        log_fd, setup_fd = fds
        try:
            pid = os.fork()
        except OSError as exc:
            self.send({"op": "failed", "id": request_id, "error": f"fork: {exc.strerror}"})
            pid = -1
        if pid == 0:
            self._become_child(log_fd, setup_fd)  # never returns
        os.close(log_fd)
        os.close(setup_fd)
        if pid > 0:
            self._spawned.add(pid)
            self.send(
                {"op": "spawned", "id": request_id, "pid": pid, "start_ticks": _start_ticks(pid)}
            )

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self._spawned:
                self._spawned.discard(pid)
                returncode = os.waitstatus_to_exitcode(status)
                self.send({"op": "exited", "pid": pid, "returncode": returncode})

    def _become_child(self, log_fd: int, setup_fd: int) -> None:
        """Set this forked child up as the instance its set-up request describes, then run
        the model server in it; exits, never returns to the server's loop."""
        setup = socket.socket(fileno=setup_fd)
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.close(self._wake[0])
            os.close(self._wake[1])
            os.close(self._control.detach())
            os.setsid()
            setup.settimeout(SETUP_TIMEOUT_S)
            request = _read_request(setup)
            _become(request, log_fd, keep=setup.fileno())
            setup.sendall(READY)
            if _read_exactly(setup, len(GO)) != GO:  # pier did not take this child
                os._exit(SPAWN_EXIT_STATUS)
            setup.close()
        except BaseException as exc:  # reported to pier, then this child exits
            with contextlib.suppress(OSError):
                setup.sendall(f"{type(exc).__name__}: {exc}".encode())
            os._exit(SPAWN_EXIT_STATUS)
        status = 1
        try:
            status = _run_model_server(request["argv"])
        finally:
            _flush()
            os._exit(status)


def _drain(fd: int) -> bool:
    try:
        return bool(os.read(fd, 512))
    except BlockingIOError:
        return False


def _start_ticks(pid: int) -> int | None:
    """The creation time of ``pid`` in clock ticks since boot (field 22 of its stat)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return int(data[data.rfind(b")") + 2 :].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _read_request(setup: socket.socket) -> dict[str, Any]:
    size = int.from_bytes(_read_exactly(setup, 8), "big")
    if size > SETUP_MAX_BYTES:
        raise ValueError(f"set-up request over {SETUP_MAX_BYTES} bytes")
    request: dict[str, Any] = json.loads(_read_exactly(setup, size))
    return request


def _read_exactly(setup: socket.socket, size: int) -> bytes:
    """``size`` bytes, or fewer when the other end closed first."""
    data = bytearray()
    while len(data) < size and (chunk := setup.recv(size - len(data))):
        data += chunk
    return bytes(data)


def _become(request: dict[str, Any], log_fd: int, *, keep: int) -> None:
    """What subprocess does between fork and exec, for a model server: standard streams,
    directory, environment and limits; every other descriptor closed."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.closerange(3, keep)
    os.closerange(keep + 1, _max_fd())
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # found again from this environment's TMPDIR
    if request.get("cpus") is not None:
        os.sched_setaffinity(0, request["cpus"])
    if request.get("memory_bytes") is not None:
        limit = int(request["memory_bytes"])
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    random = sys.modules.get("numpy.random")
    if random is not None:
        random.seed()  # not the server's state, shared by every child


def _max_fd() -> int:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else 1 << 16


def _run_model_server(argv: list[str]) -> int:
    sys.argv = ["python -m pier.modelserver", *argv]
    _set_title(["-m", "pier.modelserver", *argv])  # ps shows the instance's command
    try:
        from pier.modelserver.__main__ import main as model_server_main

        return model_server_main(argv)
    except SystemExit as exc:
        code = exc.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except BaseException:  # as the interpreter would: a traceback, status 1
        traceback.print_exc()
        return 1


def _set_title(argv: list[str]) -> None:
    """What ps and /proc/PID/cmdline show for this process. Set once in the server
    before any child changes its environment: the title's room is found from it."""
    try:
        import setproctitle
    except ImportError:
        return
    setproctitle.setproctitle(shlex.join(["python", *argv]))


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


if __name__ == "__main__":
    sys.exit(main())
