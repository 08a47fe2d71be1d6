"""SwarmRuntime: each instance is a one-replica service on a Docker Swarm (see the package
docstring)."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

# Dotted imports only: with tests/docker/ in the tree, ruff's isort takes a bare
# `import docker` for a first-party module. `import docker.errors` binds `docker` too.
import docker.errors
import docker.types
import requests
import structlog
import urllib3.exceptions

from pier.domain.errors import InvalidSpec, NotFound, RuntimeUnavailable
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
    INSTALLATION_LABEL,
    MANAGED_LABEL,
    memory_in_use,
    split_lines,
)
from pier.runtimes.docker.engine import connect, short_reason
from pier.runtimes.docker.images import Images, in_loop_thread
from pier.runtimes.docker.limits import EngineFacts, plan_limits
from pier.runtimes.docker.stats import CpuSamples
from pier.runtimes.swarm.services import (
    GPU_KIND,
    PENDING_STATES,
    Machine,
    endpoint_spec,
    latest_task,
    machines_from,
    observed_from_service,
    registry_auth_header,
    rejection,
    resources,
    service_labels,
    service_name,
)

log = structlog.get_logger(__name__)

POLL_PERIOD_S: Final = 0.1
"""How often create and delete look at the task they wait for."""
DELETE_MARGIN_S: Final = 10.0
"""How much longer than the grace delete waits for the task's container to stop."""
FOLLOW_CHECK_S: Final = 0.5
"""How often a followed log checks that its service still exists (the swarm's log stream
does not end when the service is removed)."""
_P = ParamSpec("_P")
_T = TypeVar("_T")


class TaskRejected(InstanceNotRunnable):
    """The machine the swarm chose could not start the task (it could not pull the image,
    a mount is missing there): every try fails the same way until the spec changes."""

    def __init__(self, message: str) -> None:
        super().__init__("image", message)


class SwarmRuntime:
    """Instances as one-replica services on a Docker Swarm (see the package docstring)."""

    name = "swarm"

    def __init__(
        self,
        *,
        docker_host: str | None = None,
        state_dir: Path | None = None,
        installation: str = "default",
        stop_grace_s: float = 5.0,
        start_wait_s: float = 60.0,
        reserve: bool = True,
    ) -> None:
        """``docker_host``: a manager of the swarm (default: DOCKER_HOST). A task stops
        with ``stop_grace_s`` (the swarm fixes it when the task is made); ``create`` waits
        up to ``start_wait_s`` for the task to start on its machine. ``reserve``: the limits
        are reservations too."""
        self._reserve = reserve
        self._installation = installation
        self._stop_grace_s = stop_grace_s
        self._start_wait_s = start_wait_s
        self._client = connect(docker_host)
        self._where = str(self._client.api.base_url).replace("http+unix://", "unix://")
        try:
            self._node_id = self._manager_node_id()
        except BaseException:
            self._client.close()
            raise
        self._images = Images(self._client)
        self._cpu = CpuSamples()

    def _manager_node_id(self) -> str:
        """This manager's swarm node id; RuntimeUnavailable when the engine is no manager."""
        try:
            swarm = self._client.info().get("Swarm") or {}
        except (docker.errors.DockerException, requests.RequestException) as e:
            raise RuntimeUnavailable(
                f"the Docker engine at {self._where} did not answer ({short_reason(e)})"
            ) from None
        if not swarm.get("ControlAvailable"):
            state = swarm.get("LocalNodeState") or "inactive"
            raise RuntimeUnavailable(
                f"the Docker engine at {self._where} is not a swarm manager (swarm: {state}); "
                "the swarm runtime needs DOCKER_HOST of a manager (`docker swarm init` makes "
                "one)"
            )
        return str(swarm.get("NodeID") or "")

    async def _call(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run a blocking engine call in a thread; a lost manager becomes RuntimeLost."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except requests.ConnectionError as e:
            raise RuntimeLost(
                f"lost the swarm manager at {self._where} ({short_reason(e)})"
            ) from None

    # -- images --------------------------------------------------------------------------

    async def resolve_image(
        self,
        ref: str,
        *,
        auth: dict[str, str] | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> str:
        """Pull ``ref`` on the manager and pin it (``repo@sha256:...``): every machine then
        pulls that digest from the registry when a task of it lands there."""
        return await self._call(self._images.resolve, ref, auth, in_loop_thread(on_progress))

    # -- create --------------------------------------------------------------------------

    async def create(self, spec: InstanceSpec) -> Observed:
        """Create the instance's service and wait until its task starts (or fails to);
        one that already runs is returned."""
        if not spec.image:
            raise InstanceNotRunnable("image", "the swarm runtime needs an image to run")
        seen = await self._call(self._create_sync, spec, spec.image)
        log.info(
            "instance created",
            project=seen.node.project,
            node=seen.node.node,
            instance=seen.instance_id,
            endpoint=seen.endpoint,
            machine=seen.machine,
        )
        return seen

    def _create_sync(self, spec: InstanceSpec, image: str) -> Observed:
        name = service_name(spec.instance_id)
        existing = self._inspect(name)
        if existing is not None:
            seen = self._observe(existing)
            if seen.phase != "exited":
                return self._wait_started(existing["ID"])
            self._remove_and_wait(spec.instance_id, self._stop_grace_s)
        try:
            created = self._create_service(spec, name, image)
        except docker.errors.APIError as e:
            if e.status_code == 409:  # created concurrently under the same name
                return self._wait_started(name)
            field = "placement" if "constraint" in str(e.explanation) else "spec"
            raise InvalidSpec(field, f"the swarm refused: {e.explanation}") from None
        return self._wait_started(str(created["ID"]))

    def _create_service(self, spec: InstanceSpec, name: str, image: str) -> dict[str, Any]:
        """``POST /services/create`` with the credentials the image was resolved with as
        the service's registry auth, so that whichever machine gets the task can pull it.
        (The SDK's create_service sends only what the client's own config file holds.)"""
        api = self._client.api
        data = {
            "Name": name,
            "Labels": self._labels(spec),
            "TaskTemplate": self._task_template(spec, image),
            "Mode": docker.types.ServiceMode("replicated", replicas=1),
            "EndpointSpec": endpoint_spec([p for p in (spec.port, *spec.extra_ports) if p]),
        }
        headers = registry_auth_header(image, self._images.auth_for(image))
        response = api._post_json(api._url("/services/create"), data=data, headers=headers)
        created: dict[str, Any] = api._result(response, True)
        return created

    def _labels(self, spec: InstanceSpec) -> dict[str, str]:
        return service_labels(spec, self._limits(spec), self._installation)

    def _limits(self, spec: InstanceSpec) -> Any:
        return plan_limits(spec.configuration, self._swarm_facts())

    def _task_template(self, spec: InstanceSpec, image: str) -> docker.types.TaskTemplate:
        port = str(spec.port) if spec.port else None

        def fill(argv: tuple[str, ...]) -> list[str] | None:
            return [arg.replace("{port}", port or "") for arg in argv] or None

        env = {**spec.env, **({"PIER_PORT": port} if port else {})}
        mounts = [
            docker.types.Mount(m.target, str(m.source), type="bind", read_only=m.read_only)
            for m in spec.mounts
        ]
        container = docker.types.ContainerSpec(
            image, command=fill(spec.command), args=fill(spec.args),
            env=[f"{k}={v}" for k, v in env.items()], labels=self._labels(spec),
            mounts=mounts or None, init=True,
            stop_grace_period=int(self._stop_grace_s * 1e9),
        )  # fmt: skip
        placement = docker.types.Placement(constraints=list(spec.placement))
        return docker.types.TaskTemplate(
            container,
            resources=resources(self._limits(spec), reserve=self._reserve),
            restart_policy=docker.types.RestartPolicy(condition="none"),
            placement=placement if spec.placement else None,
        )

    def _wait_started(self, service: str) -> Observed:
        """Until the task is no longer pending (scheduling, pulling, starting)."""
        deadline = time.monotonic() + self._start_wait_s
        while True:
            info = self._inspect(service)
            if info is None:
                raise NotFound(f"service {service!r} vanished right after it was created")
            tasks = self._client.api.tasks(filters={"service": info["ID"]})
            task = latest_task(tasks)
            machines = self._machines()
            if rejected := rejection(task, machines):
                labels = info["Spec"].get("Labels") or {}
                self._remove_and_wait(InstanceId(labels["pier.instance"]), 0.0)
                raise TaskRejected(rejected)
            seen = observed_from_service(info, task, machines)
            if seen.phase != "created":
                return seen
            if time.monotonic() > deadline:
                log.warning("task did not start", service=service, wait_s=self._start_wait_s)
                return seen
            time.sleep(POLL_PERIOD_S)

    def _inspect(self, service: str) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = self._client.api.inspect_service(service)
        except docker.errors.NotFound:
            return None
        return info

    def _observe(self, service: Mapping[str, Any]) -> Observed:
        tasks = self._client.api.tasks(filters={"service": service["ID"]})
        return observed_from_service(service, latest_task(tasks), self._machines())

    def _machines(self) -> dict[str, Machine]:
        return machines_from(self._client.api.nodes())

    def _swarm_facts(self) -> EngineFacts:
        """The largest machine's CPUs and memory (limits are capped to it), and whether any
        machine offers GPUs as a generic resource."""
        nodes = self._client.api.nodes()
        described = [n.get("Description") or {} for n in nodes]
        sizes = [d.get("Resources") or {} for d in described]
        offered = [g for s in sizes for g in s.get("GenericResources") or ()]
        return EngineFacts(
            cpus=max((int(s.get("NanoCPUs") or 0) // 10**9 for s in sizes), default=1) or 1,
            memory_bytes=max((int(s.get("MemoryBytes") or 0) for s in sizes), default=0) or 2**62,
            has_gpu_runtime=any(_kind(g) == GPU_KIND for g in offered),
        )

    # -- list ----------------------------------------------------------------------------

    async def list(self, *, node: NodeKey | None = None) -> list[Observed]:
        """Every service pier manages here, optionally of one node: its newest task's
        phase, endpoint (machine address and published port) and machine."""
        return await self._call(self._list_sync, node)

    def _filters(self, node: NodeKey | None) -> dict[str, builtins.list[str]]:
        labels = [f"{MANAGED_LABEL}=true", f"{INSTALLATION_LABEL}={self._installation}"]
        if node is not None:
            labels += [f"pier.project={node.project}", f"pier.node={node.node}"]
        return {"label": labels}

    def _list_sync(self, node: NodeKey | None) -> builtins.list[Observed]:
        filters = self._filters(node)
        services = self._client.api.services(filters=filters)
        if not services:
            return []
        tasks_of: dict[str, builtins.list[dict[str, Any]]] = {}
        for task in self._client.api.tasks(filters=filters):
            tasks_of.setdefault(str(task.get("ServiceID")), []).append(task)
        machines = self._machines()
        seen = [
            observed_from_service(s, latest_task(tasks_of.get(s["ID"], [])), machines)
            for s in services
            if "pier.instance" in (s["Spec"].get("Labels") or {})
        ]
        return sorted(seen, key=lambda o: o.instance_id)

    # -- delete --------------------------------------------------------------------------

    async def delete(self, instance_id: InstanceId, *, grace_s: float) -> None:
        """Remove the service and wait until its task's container has stopped. The swarm
        stops it with the grace it was created with (``stop_grace_s``); ``grace_s`` bounds
        the wait, with a margin."""
        await self._call(self._remove_and_wait, instance_id, grace_s)
        self._cpu.forget(instance_id)

    def _remove_and_wait(self, instance_id: InstanceId, grace_s: float) -> None:
        try:
            self._client.api.remove_service(service_name(instance_id))
        except docker.errors.NotFound:
            return
        filters = {"label": [*self._filters(None)["label"], f"pier.instance={instance_id}"]}
        deadline = time.monotonic() + max(grace_s, self._stop_grace_s) + DELETE_MARGIN_S
        while time.monotonic() < deadline:
            machines = self._machines()
            stopping = [
                t for t in self._client.api.tasks(filters=filters) if _still_running(t, machines)
            ]
            if not stopping:
                log.info("instance deleted", instance=instance_id)
                return
            time.sleep(POLL_PERIOD_S)
        log.warning("task still stopping after delete", instance=instance_id)

    # -- logs ----------------------------------------------------------------------------

    async def logs(
        self, instance_id: InstanceId, *, follow: bool, tail: int | None = None
    ) -> AsyncIterator[str]:
        """Lines of the service's stdout and stderr (read through the manager from the
        task's machine); ``follow`` goes on until the service is removed."""
        name = service_name(instance_id)
        try:
            response = await self._call(
                self._client.api._get,
                self._client.api._url("/services/{0}/logs", name),
                params={"stdout": True, "stderr": True, "follow": follow,
                        "tail": "all" if tail is None else max(0, tail)},
                stream=True,
            )  # fmt: skip
            if response.status_code == 404:
                raise docker.errors.NotFound(f"service {name} not found")
            self._client.api._raise_for_status(response)
        except docker.errors.NotFound:
            raise NotFound(f"instance {instance_id!r} not found in the swarm runtime") from None
        stream = self._client.api._get_result_tty(True, response, False)
        connection = _socket_of(response)
        watcher = asyncio.create_task(self._end_when_removed(name, connection)) if follow else None
        lines = split_lines(stream)
        try:
            while (line := await self._call(next, lines, None)) is not None:
                yield line
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            pass  # the watcher ended the stream: the service is gone
        finally:
            if watcher is not None:
                watcher.cancel()
            _shut(connection)  # a read blocked in a thread returns, then close cannot block
            with contextlib.suppress(Exception):
                response.close()

    async def _end_when_removed(self, name: str, connection: socket.socket | None) -> None:
        while True:
            if await self._call(self._inspect, name) is None:
                break  # removed: end the stream
            await asyncio.sleep(FOLLOW_CHECK_S)
        _shut(connection)

    # -- stats ---------------------------------------------------------------------------

    async def stats(self, instance_id: InstanceId) -> InstanceStats:
        """CPU percent since the previous call and memory in use, for a task on the
        manager's own machine; the engine API has no stats of other machines' containers,
        so those read as unknown."""
        return await self._call(self._stats_sync, instance_id)

    def _stats_sync(self, instance_id: InstanceId) -> InstanceStats:
        info = self._inspect(service_name(instance_id))
        task = None if info is None else latest_task(self._client.api.tasks(
            filters={"service": info["ID"]}
        ))  # fmt: skip
        container = ((task or {}).get("Status") or {}).get("ContainerStatus") or {}
        if task is None or task.get("NodeID") != self._node_id or not container:
            self._cpu.forget(instance_id)
            return InstanceStats()
        try:
            sample = self._client.api.stats(container["ContainerID"], stream=False, one_shot=True)
        except docker.errors.NotFound:
            self._cpu.forget(instance_id)
            return InstanceStats()
        memory = sample.get("memory_stats") or {}
        if "usage" not in memory:
            self._cpu.forget(instance_id)
            return InstanceStats()
        return InstanceStats(
            cpu_percent=self._cpu.percent(instance_id, sample.get("cpu_stats") or {}),
            memory_bytes=memory_in_use(memory),
        )

    async def close(self) -> None:
        """Close the manager connection. Services keep running."""
        self._cpu.clear()
        await asyncio.to_thread(self._client.close)


def _socket_of(response: Any) -> socket.socket | None:
    """The socket under a streamed engine response (the SDK's own way to reach it)."""
    with contextlib.suppress(AttributeError):
        raw = response.raw._fp.fp.raw
        sock = getattr(raw, "_sock", raw)
        return sock if isinstance(sock, socket.socket) else None
    return None


def _shut(connection: socket.socket | None) -> None:
    if connection is not None:
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)


def _kind(generic: Mapping[str, Any]) -> str:
    spec = generic.get("DiscreteResourceSpec") or generic.get("NamedResourceSpec") or {}
    return str(spec.get("Kind") or "")


def _still_running(task: Mapping[str, Any], machines: Mapping[str, Machine]) -> bool:
    """A task whose container may still run: not stopped yet, on a machine that answers."""
    state = str((task.get("Status") or {}).get("State") or "")
    machine = machines.get(str(task.get("NodeID") or ""))
    if machine is None or machine.state != "ready":
        return False
    return state == "running" or state in PENDING_STATES


if TYPE_CHECKING:

    def _implements_runtime(runtime: SwarmRuntime) -> Runtime:
        return runtime  # mypy holds SwarmRuntime to the Runtime protocol here


__all__ = ["SwarmRuntime"]
