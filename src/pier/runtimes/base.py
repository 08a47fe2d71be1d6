"""The Runtime interface: where instances run. Runtimes report facts; the controller
turns facts into pier statuses.

Every method is idempotent: deleting a gone instance is fine, listing after a restart
finds what an earlier pier process created (adoption).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pier.domain.configurations import Configuration
from pier.domain.errors import InvalidSpec, RuntimeUnavailable
from pier.domain.names import InstanceId, NodeKey
from pier.domain.retry import PermanentError, TemporaryError


class InstanceNotRunnable(InvalidSpec, PermanentError):
    """The runtime cannot start an instance of this spec (no image, no command, a command
    or container it cannot start): every try fails the same way until the spec changes."""


class RuntimeLost(RuntimeUnavailable, TemporaryError):
    """The runtime's engine stopped answering in the middle of a call: try again shortly."""

    def __init__(self, message: str, *, delay_s: float | None = None) -> None:
        super().__init__(message)
        if delay_s is not None:
            self.delay_s = delay_s


class ImagesNotSupported(RuntimeUnavailable, PermanentError):
    """The runtime runs commands, not images: no pull on it can ever succeed."""


@dataclass(frozen=True, slots=True)
class Mount:
    """A host file or directory an instance reads: container runtimes mount it at
    ``target``; the local runtime copies it to ``target`` in the instance's own directory
    (``{workdir}`` in the command), since pier's data dir is closed to instances."""

    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """Everything a runtime needs to start one instance."""

    instance_id: InstanceId
    node: NodeKey
    command: tuple[str, ...]
    """Process runtimes: argv to run (``{workdir}``: the instance's own directory).
    Container runtimes: command override (may be empty)."""
    env: Mapping[str, str] = field(default_factory=dict)
    configuration: Configuration | None = None
    image: str | None = None
    port: int | None = None
    """Container port the server listens on; process runtimes pass it via argv/env."""
    args: tuple[str, ...] = ()
    generation: int = 1
    """The node spec generation this instance was made from (rolling updates)."""
    extra_ports: tuple[int, ...] = ()
    """Container ports besides ``port`` that pier reaches (a separate health or metrics
    port); container runtimes publish them too."""
    mounts: tuple[Mount, ...] = ()
    """Host files the instance reads (its model); see Mount."""
    placement: tuple[str, ...] = ()
    """Cluster runtimes: constraints on the machine it may run on, in Docker Swarm's
    words (``node.labels.gpu==true``); the other runtimes have one machine and ignore it."""


@dataclass(frozen=True, slots=True)
class Observed:
    """What a runtime sees of one instance right now. No pier opinions in here."""

    instance_id: InstanceId
    node: NodeKey
    phase: Literal["created", "running", "exited"]
    endpoint: str | None
    """Base URL once known, e.g. http://127.0.0.1:41235."""
    port_endpoints: Mapping[int, str] = field(default_factory=dict)
    """Base URLs of the spec's ``extra_ports``, by container port, once known."""
    exit_code: int | None = None
    generation: int = 1
    limits_applied: tuple[str, ...] = ()
    limits_not_applied: tuple[str, ...] = ()
    """Human-readable, e.g. "gpus=1: no GPU on this machine"."""
    pid: int | None = None
    """Process runtimes: the instance's process (group leader), for `kill` and `ps`."""
    container_id: str | None = None
    """Container runtimes: the container's id, for `docker logs`, `docker kill`..."""
    machine: str | None = None
    """Cluster runtimes: the machine the instance runs on, in words (hostname, address)."""
    exit_reason: str | None = None
    """Why it exited, when the runtime knows more than an exit code (its machine was lost,
    the engine refused to start it)."""


@dataclass(frozen=True, slots=True)
class InstanceStats:
    cpu_percent: float | None = None
    memory_bytes: int | None = None


@runtime_checkable
class Runtime(Protocol):
    """Where instances run: every method the controller and the server call on one."""

    name: str

    async def create(self, spec: InstanceSpec) -> Observed: ...

    async def delete(self, instance_id: InstanceId, *, grace_s: float) -> None: ...

    def logs(
        self, instance_id: InstanceId, *, follow: bool, tail: int | None = None
    ) -> AsyncIterator[str]: ...

    async def stats(self, instance_id: InstanceId) -> InstanceStats: ...

    async def close(self) -> None: ...

    async def list(self, *, node: NodeKey | None = None) -> list[Observed]:
        """What runs now; only reads (no clean-up, no rotation): safe to call any time."""
        ...

    async def resolve_image(
        self,
        ref: str,
        *,
        auth: dict[str, str] | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> str:
        """Pull ``ref`` and pin it (``repo@sha256:...``); a runtime that runs no images
        raises RuntimeUnavailable saying so."""
        ...
