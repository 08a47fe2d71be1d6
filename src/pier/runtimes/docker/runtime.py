"""DockerRuntime: instances as containers on a Docker engine (see the package docstring)."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

# Dotted imports only: with tests/docker/ in the tree, ruff's isort takes a bare
# `import docker` for a first-party module. `import docker.errors` binds `docker` too.
import docker.errors
import requests
import structlog

from pier.domain.errors import InvalidSpec, NotFound
from pier.domain.names import InstanceId, NodeKey
from pier.runtimes.base import (
    InstanceNotRunnable,
    InstanceSpec,
    InstanceStats,
    Observed,
    Runtime,
    RuntimeLost,
)
from pier.runtimes.docker.containers import (
    HOST,
    INSTALLATION_LABEL,
    MANAGED_LABEL,
    container_labels,
    container_name,
    host_ports_from_summary,
    memory_in_use,
    observed_from_inspect,
    observed_from_labels,
    phase_of,
    split_lines,
)
from pier.runtimes.docker.engine import connect, short_reason
from pier.runtimes.docker.images import Images, in_loop_thread
from pier.runtimes.docker.limits import EngineFacts, LimitPlan, plan_limits
from pier.runtimes.docker.stats import CpuSamples

log = structlog.get_logger(__name__)

PORT_WAIT_S: Final = 2.0
"""After start, how long ``create`` waits for the engine to show the published port."""
PORT_POLL_PERIOD_S: Final = 0.05
_P = ParamSpec("_P")
_T = TypeVar("_T")


class DockerRuntime:
    """Instances as containers on a Docker engine (see the package docstring)."""

    name = "docker"

    def __init__(
        self,
        *,
        docker_host: str | None = None,
        state_dir: Path | None = None,
        installation: str = "default",
    ) -> None:
        """``installation`` labels every container, and ``list`` sees only its own: pier
        processes with different data dirs can share one engine without adopting, or
        removing as orphans, each other's containers."""
        self._installation = installation
        self._client = connect(docker_host)
        self._where = str(self._client.api.base_url).replace("http+unix://", "unix://")
        self._engine: EngineFacts | None = None
        self._images = Images(self._client)
        self._cpu = CpuSamples()

    async def _call(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run a blocking engine call in a thread; a lost engine becomes RuntimeLost (a
        RuntimeUnavailable worth trying again shortly)."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except requests.ConnectionError as e:
            raise RuntimeLost(
                f"lost the Docker engine at {self._where} ({short_reason(e)})"
            ) from None

    # -- images --------------------------------------------------------------------------

    async def resolve_image(
        self,
        ref: str,
        *,
        auth: dict[str, str] | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> str:
        """Pull ``ref`` and return a pinned reference (``repo@sha256:...``); ImagePullFailed
        with the registry's message when it cannot be pulled. ``on_progress`` gets short
        lines in the event loop's thread."""
        return await self._call(self._images.resolve, ref, auth, in_loop_thread(on_progress))

    # -- create --------------------------------------------------------------------------

    async def create(self, spec: InstanceSpec) -> Observed:
        """Create and start the instance's container; one that already runs is returned."""
        if not spec.image:
            raise InstanceNotRunnable("image", "the docker runtime needs an image to run")
        seen = await self._call(self._create_sync, spec, spec.image)
        log.info(
            "instance created",
            project=seen.node.project,
            node=seen.node.node,
            instance=seen.instance_id,
            endpoint=seen.endpoint,
        )
        return seen

    def _create_sync(self, spec: InstanceSpec, image: str) -> Observed:
        name = container_name(spec.instance_id)
        existing = self._inspect(name)
        if existing is not None:
            if existing["State"]["Status"] == "running":
                return observed_from_inspect(existing)
            with contextlib.suppress(docker.errors.NotFound):
                self._client.api.remove_container(name, force=True)
        self._images.ensure(image)
        limits = plan_limits(spec.configuration, self._engine_facts())
        container = self._create_container(name, image, spec, limits)
        try:
            container.start()
        except docker.errors.APIError as e:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
            # 400: the engine cannot run the command at all (not found, not executable)
            refused = InstanceNotRunnable if e.status_code == 400 else InvalidSpec
            raise refused("command", f"cannot start the container: {e.explanation}") from None
        return self._wait_for_port(name)

    def _create_container(
        self, name: str, image: str, spec: InstanceSpec, limits: LimitPlan
    ) -> Any:
        port = str(spec.port) if spec.port else None

        def fill(argv: tuple[str, ...]) -> list[str] | None:
            return [arg.replace("{port}", port or "") for arg in argv] or None

        env = {**spec.env, **({"PIER_PORT": port} if port else {})}
        published = [p for p in (spec.port, *spec.extra_ports) if p]
        try:
            return self._client.containers.create(
                image,
                entrypoint=fill(spec.command),
                command=fill(spec.args),
                environment=env,
                labels=container_labels(spec, limits, self._installation),
                name=name,
                init=True,
                detach=True,
                ports={f"{p}/tcp": (HOST, None) for p in published} or None,
                volumes={
                    str(m.source): {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
                    for m in spec.mounts
                }
                or None,
                **limits.host_config(),
            )
        except docker.errors.ImageNotFound as e:
            raise InvalidSpec("image", str(e.explanation)) from None
        except docker.errors.APIError as e:
            if e.status_code == 409:  # created concurrently under the same name
                return self._client.containers.get(name)
            raise InvalidSpec("spec", f"the Docker engine refused: {e.explanation}") from None

    def _wait_for_port(self, name: str) -> Observed:
        deadline = time.monotonic() + PORT_WAIT_S
        while True:
            info = self._inspect(name)
            if info is None:
                raise NotFound(f"container {name!r} vanished right after it started")
            seen = observed_from_inspect(info)
            publishes_port = bool(info["Config"]["Labels"].get("pier.port"))
            if seen.endpoint is not None or seen.phase != "running" or not publishes_port:
                return seen
            if time.monotonic() > deadline:
                log.warning("published port did not show up", container=name)
                return seen
            time.sleep(PORT_POLL_PERIOD_S)

    def _inspect(self, name: str) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = self._client.api.inspect_container(name)
        except docker.errors.NotFound:
            return None
        return info

    def _engine_facts(self) -> EngineFacts:
        if self._engine is None:
            info = self._client.info()
            self._engine = EngineFacts(
                cpus=int(info.get("NCPU") or 1),
                memory_bytes=int(info.get("MemTotal") or 0) or 2**62,
                has_gpu_runtime="nvidia" in (info.get("Runtimes") or {}),
            )
        return self._engine

    # -- list ----------------------------------------------------------------------------

    async def list(self, *, node: NodeKey | None = None) -> list[Observed]:
        """Every container pier manages (running or not), optionally of one node."""
        return await self._call(self._list_sync, node)

    def _list_sync(self, node: NodeKey | None) -> builtins.list[Observed]:
        filters = [f"{MANAGED_LABEL}=true", f"{INSTALLATION_LABEL}={self._installation}"]
        if node is not None:
            filters += [f"pier.project={node.project}", f"pier.node={node.node}"]
        seen: builtins.list[Observed] = []
        for summary in self._client.api.containers(all=True, filters={"label": filters}):
            labels = summary.get("Labels") or {}
            if "pier.instance" not in labels:
                continue
            phase = phase_of(str(summary.get("State", "")))
            if phase == "exited":  # the exit code is only in the full inspect
                info = self._inspect(summary["Id"])
                if info is not None:
                    seen.append(observed_from_inspect(info))
                continue
            host_ports = host_ports_from_summary(summary) if phase == "running" else {}
            seen.append(observed_from_labels(labels, phase, host_ports, None, summary.get("Id")))
        return sorted(seen, key=lambda o: o.instance_id)

    # -- delete --------------------------------------------------------------------------

    async def delete(self, instance_id: InstanceId, *, grace_s: float) -> None:
        """Stop the container (SIGTERM, SIGKILL after ``grace_s``) and remove it."""
        await self._call(self._delete_sync, instance_id, grace_s)
        self._cpu.forget(instance_id)

    def _delete_sync(self, instance_id: InstanceId, grace_s: float) -> None:
        name = container_name(instance_id)
        try:
            self._client.api.stop(name, timeout=max(0, math.ceil(grace_s)))
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as e:
            log.warning("container stop failed", instance=instance_id, error=str(e.explanation))
        try:
            self._client.api.remove_container(name, force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as e:
            if e.status_code != 409:  # 409: removal already in progress
                raise
        log.info("instance deleted", instance=instance_id)

    # -- logs ----------------------------------------------------------------------------

    async def logs(
        self, instance_id: InstanceId, *, follow: bool, tail: int | None = None
    ) -> AsyncIterator[str]:
        """Lines of the container's stdout and stderr; ``follow`` goes on until it stops."""
        name = container_name(instance_id)
        try:
            stream = await self._call(
                self._client.api.logs,
                name,
                stdout=True,
                stderr=True,
                stream=True,
                follow=follow,
                tail="all" if tail is None else max(0, tail),
            )
        except docker.errors.NotFound:
            raise NotFound(f"instance {instance_id!r} not found in the docker runtime") from None
        lines = split_lines(stream)
        try:
            while (line := await self._call(next, lines, None)) is not None:
                yield line
        finally:
            with contextlib.suppress(Exception):
                stream.close()

    # -- stats ---------------------------------------------------------------------------

    async def stats(self, instance_id: InstanceId) -> InstanceStats:
        """CPU percent since the previous call (0.0 on the first) and memory in use."""
        try:
            sample: dict[str, Any] = await self._call(
                self._client.api.stats, container_name(instance_id), stream=False, one_shot=True
            )
        except docker.errors.NotFound:
            self._cpu.forget(instance_id)
            return InstanceStats()
        memory = sample.get("memory_stats") or {}
        if "usage" not in memory:  # not running
            self._cpu.forget(instance_id)
            return InstanceStats()
        return InstanceStats(
            cpu_percent=self._cpu.percent(instance_id, sample.get("cpu_stats") or {}),
            memory_bytes=memory_in_use(memory),
        )

    async def close(self) -> None:
        """Close the engine connection. Containers keep running: stopping them is the
        controller's job."""
        self._cpu.clear()
        await asyncio.to_thread(self._client.close)


if TYPE_CHECKING:

    def _implements_runtime(runtime: DockerRuntime) -> Runtime:
        return runtime  # mypy holds DockerRuntime to the Runtime protocol here


__all__ = ["DockerRuntime"]
