"""Model servers forked from a fork server (pier.modelserver.forkserver): pier's end.

A local instance whose command is pier's own model server (``sys.executable -m
pier.modelserver ...``) starts as a fork of a process that has already imported the
server, instead of an exec that imports it again (half a second of CPU each). One fork
server runs per sandbox environment, started with the first such instance; this OS
process's table of children (processes.children) holds a :class:`Forked` handle for each
child, which the fork server's exit reports fill in as a Popen's poll would.

When the fork server is gone (it died, or was never able to start), its children run on
as adopted instances do (their exit codes unknown), and new instances are exec'd until a
new fork server starts.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import structlog

from pier.sandbox import MODEL_SERVER_ENV, Sandbox

log = structlog.get_logger("pier.runtimes.local")

MODEL_SERVER: Final = (sys.executable, "-m", "pier.modelserver")
"""The command prefix of pier's model server, as the controller writes it."""
START_TIMEOUT_S: Final = 120.0
"""How long the fork server may take to import the model server (a busy machine)."""
SPAWN_TIMEOUT_S: Final = 60.0
"""How long one spawn may take, set-up of the child included."""
RETRY_S: Final = 60.0
"""After a fork server failed to start, how long instances are exec'd before another try."""
MESSAGE_MAX_BYTES: Final = 4096
"""A control message's size limit (pier.modelserver.forkserver's)."""
READY: Final = b"ok\n"
"""A child's word that it is set up; GO: pier's that it may run (the fork server's)."""
GO: Final = b"go"
READ_AT_START: Final = ("PYTHON", "LD_", "OPENBLAS_", "OMP_", "MKL_", "GOTO_", "ORT_")
"""Prefixes of variables that the interpreter or a library reads when it starts: a child
that would see other values of them than the fork server did is exec'd instead."""


def can_fork(env: Mapping[str, str], server_env: Mapping[str, str]) -> bool:
    """Whether a model server with ``env`` behaves as it would exec'd when forked from a
    fork server started with ``server_env``."""
    keys = {k for k in (*env, *server_env) if k.startswith(READ_AT_START)}
    return all(env.get(k) == server_env.get(k) for k in keys)


class ForkServerGone(Exception):
    """The fork server cannot start a child (it is gone, or never started)."""


class SetUpFailed(Exception):
    """A forked child could not become its instance (its directory, its limits...)."""


class Forked:
    """A child of a fork server, polled as a Popen is: ``returncode`` is set when the fork
    server reports its exit; ``orphaned`` when the fork server went first."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.orphaned = False
        self._ended = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        self._ended.wait(timeout)
        return self.returncode

    def _exited(self, returncode: int) -> None:
        self.returncode = returncode
        self._ended.set()

    def _orphan(self) -> None:
        self.orphaned = True
        self._ended.set()


@dataclass
class _Waiter:
    done: threading.Event = field(default_factory=threading.Event)
    spawned: tuple[Forked, int | None] | None = None
    error: str | None = None


class ForkServer:
    """One ``python -m pier.modelserver.forkserver`` and the reader of its reports."""

    def __init__(self, env: Mapping[str, str], popen_options: Mapping[str, Any]) -> None:
        self.env = dict(env)
        control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._popen = subprocess.Popen(
                [*MODEL_SERVER[:2], "pier.modelserver.forkserver", "--fd", str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=self.env,
                pass_fds=(theirs.fileno(),),
                **popen_options,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            control.close()
            raise ForkServerGone(f"cannot start the fork server: {exc}") from exc
        finally:
            theirs.close()
        self._control = control
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, _Waiter] = {}
        self._children: dict[int, Forked] = {}
        self._alive = True
        self._reader: threading.Thread | None = None
        try:
            self._await_ready()
        except BaseException:
            self.close()
            raise
        self._reader = threading.Thread(target=self._read, name="fork server reports", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def pid(self) -> int:
        return self._popen.pid

    def _await_ready(self) -> None:
        readable, _, _ = select.select([self._control], [], [], START_TIMEOUT_S)
        data = self._control.recv(MESSAGE_MAX_BYTES) if readable else b""
        if not data or json.loads(data).get("op") != "ready":
            raise ForkServerGone(
                "the fork server did not start"
                + (f" (exit status {self._popen.poll()})" if self._popen.poll() is not None else "")
            )

    def spawn(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log_fd: int,
        cpus: Sequence[int] | None,
        memory_bytes: int | None,
    ) -> tuple[Forked, int | None]:
        """Fork a model server running ``argv`` (its arguments); its handle, and its start
        time in clock ticks since boot when the fork server could read it. ForkServerGone
        when the fork server cannot fork; SetUpFailed when the child could not set itself
        up (it then exits, status 127)."""
        setup, theirs = socket.socketpair()
        try:
            setup.settimeout(SPAWN_TIMEOUT_S)
            waiter = _Waiter()
            with self._lock:
                if not self._alive:
                    raise ForkServerGone("the fork server is gone")
                request_id = next(self._ids)
                self._waiting[request_id] = waiter
                try:
                    socket.send_fds(
                        self._control,
                        [json.dumps({"op": "spawn", "id": request_id}).encode()],
                        [log_fd, theirs.fileno()],
                    )
                except OSError as exc:
                    del self._waiting[request_id]
                    raise ForkServerGone(f"the fork server is gone: {exc}") from exc
            theirs.close()
            request = {"argv": list(argv), "env": dict(env), "cwd": str(cwd), "cpus": cpus,
                       "memory_bytes": memory_bytes}  # fmt: skip
            data = json.dumps(request).encode()
            with contextlib.suppress(OSError):  # no child to read it: the answer says why
                setup.sendall(len(data).to_bytes(8, "big") + data)
            if not waiter.done.wait(SPAWN_TIMEOUT_S):
                raise ForkServerGone(f"the fork server did not answer in {SPAWN_TIMEOUT_S:g} s")
            if waiter.spawned is None:  # a child forked all the same ends on the close below
                raise ForkServerGone(waiter.error or "the fork server is gone")
            answer = _read_answer(setup)
            if answer != READY:
                raise SetUpFailed(answer.decode(errors="replace").strip()
                                  or "the child exited during its set-up")  # fmt: skip
            try:
                setup.sendall(GO)
            except OSError as exc:
                raise SetUpFailed(f"the child went during its set-up: {exc}") from exc
            return waiter.spawned
        finally:
            theirs.close()
            setup.close()

    def _read(self) -> None:
        """Until the fork server's socket closes: its answers and exit reports."""
        try:
            while data := self._control.recv(MESSAGE_MAX_BYTES):
                self._dispatch(json.loads(data))
        except (OSError, ValueError) as exc:
            log.warning("fork server reports unreadable", error=str(exc))
        finally:
            self._gone()

    def _dispatch(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "exited":
            with self._lock:
                child = self._children.pop(message["pid"], None)
            if child is not None:
                child._exited(int(message["returncode"]))
            return
        with self._lock:
            waiter = self._waiting.pop(message.get("id", -1), None)
        if waiter is None:
            return
        if op == "spawned":
            child = Forked(int(message["pid"]))
            with self._lock:
                self._children[child.pid] = child
            waiter.spawned = (child, message.get("start_ticks"))
        else:
            waiter.error = str(message.get("error", "the fork server refused"))
        waiter.done.set()

    def _gone(self) -> None:
        with self._lock:
            self._alive = False
            self._control.close()
            waiting, self._waiting = self._waiting, {}
            children, self._children = self._children, {}
        for waiter in waiting.values():
            waiter.error = "the fork server is gone"
            waiter.done.set()
        for child in children.values():
            child._orphan()
        try:  # its socket is closed: it is ending, or is to end now
            self._popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait()

    def close(self) -> None:
        """Stop the fork server (its children run on, orphaned)."""
        with contextlib.suppress(OSError):
            self._control.shutdown(socket.SHUT_RDWR)  # the reader sees the end, closes it
        if self._reader is not None:
            self._reader.join(timeout=5)
        with self._lock:
            self._alive = False
            self._control.close()
        if self._popen.poll() is None:  # the reader's end did not come (it never started)
            self._popen.kill()
            self._popen.wait()


def _read_answer(setup: socket.socket) -> bytes:
    """READY, or what the child said instead before it closed (bounded)."""
    data = bytearray()
    try:
        while data != READY and len(data) < 65536 and (chunk := setup.recv(4096)):
            data += chunk
    except OSError as exc:
        return f"no answer from the child: {exc}".encode()
    return bytes(data)


class ForkServers:
    """The fork servers of this OS process, one per sandbox environment, started on first
    use and again when one is gone. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servers: dict[tuple[object, ...], ForkServer] = {}
        self._failed_at: dict[tuple[object, ...], float] = {}
        """When the fork server of a key last failed to start (time.monotonic)."""

    def server_env(self, sandbox: Sandbox) -> dict[str, str]:
        """The environment of the fork server for ``sandbox``."""
        return sandbox.environment(MODEL_SERVER_ENV, home=sandbox.root)

    def for_sandbox(self, sandbox: Sandbox) -> ForkServer | None:
        """The running fork server of ``sandbox``'s user and environment, started if need
        be; None when it cannot start (logged once; instances are exec'd instead)."""
        env = self.server_env(sandbox)
        key = (sandbox.user, tuple(sorted(env.items())))
        with self._lock:
            server = self._servers.get(key)
            if server is not None and server.alive:
                return server
            failed_at = self._failed_at.get(key)
            if failed_at is not None and time.monotonic() - failed_at < RETRY_S:
                return None
            if server is not None:
                log.warning("fork server gone; starting another", pid=server.pid)
            try:
                server = ForkServer(env, sandbox.popen_options(Path("/")))
            except ForkServerGone as exc:
                log.warning("model servers are exec'd for now", reason=str(exc), retry_s=RETRY_S)
                self._failed_at[key] = time.monotonic()
                self._servers.pop(key, None)
                return None
            self._failed_at.pop(key, None)
            self._servers[key] = server
            log.info("fork server started", pid=server.pid)
            return server

    def close(self) -> None:
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.close()


fork_servers = ForkServers()
"""This OS process's fork servers (its table of children is process-wide too)."""


def is_model_server(argv: Sequence[str]) -> bool:
    return tuple(argv[: len(MODEL_SERVER)]) == MODEL_SERVER


def fork_compatible(env: Mapping[str, str], sandbox: Sandbox) -> bool:
    """Whether a model server with ``env`` may be forked from ``sandbox``'s fork server."""
    return can_fork(env, fork_servers.server_env(sandbox))


def with_model_server_env(env: Mapping[str, str]) -> dict[str, str]:
    """A model server's environment: pier's defaults for it under the node's own."""
    return {**MODEL_SERVER_ENV, **env}
