"""The docker runtime: each instance is a container on a Docker engine.

Adoption. Nothing about an instance lives only in pier's memory. Every container pier
creates is named ``pier-<instance_id>`` and labelled ``pier.managed=true``,
``pier.project``, ``pier.node``, ``pier.instance``, ``pier.generation`` and ``pier.port``
(plus the limits that were and were not applied). ``list`` reads the labels back, so
after pier restarts, even after a SIGKILL, a new DockerRuntime finds the same containers
with the same endpoints and the controller adopts them instead of starting duplicates.
The engine keeps the state; ``state_dir`` is accepted for symmetry with the local runtime
and not used. Containers that carry no ``pier.managed`` label are never touched.

Digest pinning. A tag is a pointer that can move between two instance starts.
``resolve_image`` pulls once and returns ``repo@sha256:...`` (the image's RepoDigests for
that repository), and the controller creates every instance of a node generation from
that reference, so all instances run the same bits, and a rolling update is the only way
new bits arrive. An image that never came from a registry under that name (built or
tagged on this engine) cannot be pinned by a registry digest; it is pinned by its image
ID (``sha256:...``), which the engine runs just as well.

init=True. Many servers (busybox httpd, shell scripts, naive Python servers) ignore
SIGTERM when they run as PID 1, because the kernel gives PID 1 no default signal
handlers; ``docker stop`` then waits its whole timeout before SIGKILL. Docker's init
(tini) as PID 1 forwards signals and reaps zombies, so stops take a fraction of a second
and crashed children do not pile up.

Ports. The instance's port, and a separate health or metrics port when the node has one
(``extra_ports``, labelled ``pier.extra-ports``), are published on 127.0.0.1 only, with
host ports the engine picks, so two instances of one node never collide and nothing is
exposed beyond this machine: clients reach instances through pier's gateway, which runs
here.

Mounts. A model served from an image is bind-mounted read-only from pier's model store,
so the engine must run on the machine that holds pier's data dir (a local engine, or
DOCKER_HOST pointing at this machine's engine).

Command and args follow Kubernetes: ``spec.command`` replaces the image's ENTRYPOINT,
``spec.args`` its CMD, and empty means the image's own. ``{port}`` in either is replaced
by the container port, which the container also gets as ``PIER_PORT``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import math
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, ParamSpec, TypeVar

# Dotted imports only: with tests/docker/ in the tree, ruff's isort takes a bare
# `import docker` for a first-party module. `import docker.errors` binds `docker` too.
import docker.constants
import docker.errors
import docker.utils
import requests
import structlog
from docker.types import DeviceRequest
from docker.utils import parse_repository_tag

from pier.domain.configurations import Configuration, format_bytes
from pier.domain.errors import InvalidSpec, NotFound, PierError, RuntimeUnavailable
from pier.domain.names import InstanceId, NodeKey, NodeName, ProjectName
from pier.runtimes.base import InstanceSpec, InstanceStats, Observed

log = structlog.get_logger(__name__)

HOST: Final = "127.0.0.1"
DEFAULT_DOCKER_HOST: Final = "unix:///var/run/docker.sock"
UNIX_CONNECT_TIMEOUT_S: Final = 5.0
NAME_PREFIX: Final = "pier-"
MANAGED_LABEL: Final = "pier.managed"
INSTALLATION_LABEL: Final = "pier.installation"
PORT_WAIT_S: Final = 2.0
"""After start, how long ``create`` waits for the engine to show the published port."""
PORT_POLL_PERIOD_S: Final = 0.05
MIN_MEMORY_BYTES: Final = 6 * 2**20
"""The engine refuses memory limits below 6 MiB."""
LAYER_ANNOUNCED: Final = frozenset({"Pulling fs layer", "Waiting", "Already exists"})
LAYER_DONE: Final = frozenset({"Pull complete", "Already exists"})
LAYER_DOWNLOADED: Final = LAYER_DONE | {"Download complete", "Extracting"}

Phase = Literal["created", "running", "exited"]
_P = ParamSpec("_P")
_T = TypeVar("_T")


class ImagePullFailed(PierError):
    """The registry would not give us the image: missing, wrong credentials, unreachable."""

    code: ClassVar[str] = "image_pull_failed"
    http_status: ClassVar[int] = 422

    def __init__(self, image: str, reason: str) -> None:
        super().__init__(f"cannot pull image {image!r}: {reason}")
        self.image = image
        self.reason = reason


def probe_engine(docker_host: str | None = None) -> str | None:
    """None when a Docker engine answers at ``docker_host`` (default: DOCKER_HOST or the
    default socket), else a message that says where none answered and what to do."""
    try:
        client = _connect(docker_host)
    except RuntimeUnavailable as e:
        return e.message
    client.close()
    return None


def _connect(docker_host: str | None) -> docker.DockerClient:
    """A client for the engine at ``docker_host``; RuntimeUnavailable when none answers.

    The SDK leaks a socket when it cannot connect to a unix socket, so that case is
    checked first with a socket of our own. The ping goes through a client with a fixed API
    version, which does no I/O when it is built and so can be closed whatever happens; the
    client we keep then asks the engine for its API version."""
    where = docker_host or docker.utils.kwargs_from_env().get("base_url") or DEFAULT_DOCKER_HOST
    try:
        scheme, _, path = where.partition("://")
        if scheme in ("unix", "http+unix"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(UNIX_CONNECT_TIMEOUT_S)
                sock.connect(path)
        probe = _client(docker_host, docker.constants.MINIMUM_DOCKER_API_VERSION)
        try:
            probe.ping()
        finally:
            probe.close()
        return _client(docker_host, None)
    except (docker.errors.DockerException, requests.RequestException, OSError) as e:
        raise RuntimeUnavailable(
            f"no Docker engine at {where} ({_short_reason(e)}); start one "
            "(e.g. `dockerd &`) or use --runtime local"
        ) from None


def _client(docker_host: str | None, version: str | None) -> docker.DockerClient:
    """``version=None`` asks the engine; DOCKER_HOST etc. are read only by from_env()."""
    if docker_host:
        return docker.DockerClient(base_url=docker_host, version=version)
    return docker.from_env(version=version)


def _short_reason(exc: BaseException) -> str:
    """The innermost OS error of a connection failure ("Connection refused"), else str()."""
    seen: set[int] = set()
    queue: builtins.list[BaseException] = [exc]
    while queue:
        error = queue.pop(0)
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, OSError) and error.strerror:
            return error.strerror
        linked = (error.__cause__, error.__context__, getattr(error, "reason", None), *error.args)
        queue.extend(e for e in linked if isinstance(e, BaseException))
    return str(exc)


@dataclass(frozen=True, slots=True)
class EngineFacts:
    """What the engine's host offers; read once, used to cap limits."""

    cpus: int
    memory_bytes: int
    has_gpu_runtime: bool


@dataclass(frozen=True, slots=True)
class LimitPlan:
    """Host-config limits for one container, with what was and was not applied."""

    nano_cpus: int | None = None
    memory_bytes: int | None = None
    gpus: int = 0
    applied: tuple[str, ...] = ()
    not_applied: tuple[str, ...] = ()

    def host_config(self) -> dict[str, Any]:
        """Keyword arguments for ``containers.create``."""
        options: dict[str, Any] = {}
        if self.nano_cpus is not None:
            options["nano_cpus"] = self.nano_cpus
        if self.memory_bytes is not None:
            options["mem_limit"] = self.memory_bytes
            options["memswap_limit"] = self.memory_bytes  # no swap beyond the limit
        if self.gpus > 0:
            options["device_requests"] = [DeviceRequest(count=self.gpus, capabilities=[["gpu"]])]
        return options


def plan_limits(configuration: Configuration | None, engine: EngineFacts) -> LimitPlan:
    """Decide NanoCpus, Memory and GPU requests for ``configuration`` on this engine."""
    if configuration is None:
        return LimitPlan()
    applied: list[str] = []
    not_applied: list[str] = []
    nano_cpus = memory_bytes = None
    if configuration.vcpu > 0:
        cpus = min(configuration.vcpu, engine.cpus)
        nano_cpus = cpus * 10**9
        applied.append(f"cpus={cpus} (NanoCpus)")
        if cpus < configuration.vcpu:
            not_applied.append(
                f"vcpu={configuration.vcpu}: capped at the Docker host's {engine.cpus} CPUs"
            )
    if configuration.memory_bytes > 0:
        asked = format_bytes(configuration.memory_bytes)
        memory_bytes = max(min(configuration.memory_bytes, engine.memory_bytes), MIN_MEMORY_BYTES)
        applied.append(f"memory={format_bytes(memory_bytes)} (Memory)")
        if memory_bytes < configuration.memory_bytes:
            not_applied.append(
                f"memory={asked}: capped at the Docker host's {format_bytes(engine.memory_bytes)}"
            )
        elif memory_bytes > configuration.memory_bytes:
            not_applied.append(f"memory={asked}: raised to the Docker engine's minimum of 6 MiB")
    gpus = 0
    if configuration.gpus > 0:
        if engine.has_gpu_runtime:
            gpus = configuration.gpus
            applied.append(f"gpus={gpus} (device request)")
        else:
            not_applied.append(
                f"gpus={configuration.gpus}: not applied: the Docker engine has no GPU runtime"
            )
    return LimitPlan(nano_cpus, memory_bytes, gpus, tuple(applied), tuple(not_applied))


class PullProgress:
    """Turns the engine's pull stream into a few short lines for people:
    "pulling REF: Downloading 3/4 layers", then "Extracting 1/4 layers", "Pulled 4/4 layers".

    The engine announces every layer ("Pulling fs layer", "Waiting", "Already exists")
    before any download starts, so counts are only shown after the announcements, and a
    line is emitted only when its text changes."""

    def __init__(self, ref: str, emit: Callable[[str], None] | None) -> None:
        self._ref = ref
        self._emit = emit
        self._layers: dict[str, str] = {}
        self._last = ""

    def update(self, item: Mapping[str, Any]) -> None:
        status = str(item.get("status", "")).strip()
        if not status:
            return
        if "progressDetail" not in item or "id" not in item:
            self._say(status)
            return
        self._layers[str(item["id"])] = status
        if status not in LAYER_ANNOUNCED:
            self._say(self._layer_summary())

    def _layer_summary(self) -> str:
        total = len(self._layers)
        downloaded = sum(1 for s in self._layers.values() if s in LAYER_DOWNLOADED)
        extracted = sum(1 for s in self._layers.values() if s in LAYER_DONE)
        if downloaded < total:
            return f"Downloading {downloaded}/{total} layers"
        if extracted < total:
            return f"Extracting {extracted}/{total} layers"
        return f"Pulled {total}/{total} layers"

    def _say(self, text: str) -> None:
        line = f"pulling {self._ref}: {text}"
        if line != self._last and self._emit is not None:
            self._last = line
            self._emit(line)


def _same_repository(a: str, b: str) -> bool:
    """Whether two repository names are the same (docker.io/library/x == x)."""
    return _familiar(a) == _familiar(b)


def _familiar(repository: str) -> str:
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        repository = repository.removeprefix(prefix)
    return repository.removeprefix("library/")


def _is_digest_ref(ref: str) -> bool:
    return "@sha256:" in ref or ref.startswith("sha256:")


def _phase(state: str) -> Phase:
    if state == "created":
        return "created"
    if state in ("running", "paused", "restarting"):
        return "running"
    return "exited"  # exited, dead, removing


def _labels(spec: InstanceSpec, limits: LimitPlan, installation: str) -> dict[str, str]:
    return {
        MANAGED_LABEL: "true",
        INSTALLATION_LABEL: installation,
        "pier.project": spec.node.project,
        "pier.node": spec.node.node,
        "pier.instance": spec.instance_id,
        "pier.generation": str(spec.generation),
        "pier.port": str(spec.port or ""),
        "pier.extra-ports": json.dumps(list(spec.extra_ports)),
        "pier.limits-applied": json.dumps(list(limits.applied)),
        "pier.limits-not-applied": json.dumps(list(limits.not_applied)),
    }


def _observed(
    labels: Mapping[str, str],
    phase: Phase,
    host_ports: Mapping[int, int],
    exit_code: int | None,
) -> Observed:
    """``host_ports``: published container port -> host port (empty unless running)."""
    port = int(labels.get("pier.port") or 0)
    extra = json.loads(labels.get("pier.extra-ports") or "[]")
    return Observed(
        instance_id=InstanceId(labels["pier.instance"]),
        node=NodeKey(ProjectName(labels["pier.project"]), NodeName(labels["pier.node"])),
        phase=phase,
        endpoint=_url(host_ports[port]) if port in host_ports else None,
        port_endpoints={int(p): _url(host_ports[p]) for p in extra if p in host_ports},
        exit_code=exit_code,
        generation=int(labels.get("pier.generation") or 1),
        limits_applied=tuple(json.loads(labels.get("pier.limits-applied") or "[]")),
        limits_not_applied=tuple(json.loads(labels.get("pier.limits-not-applied") or "[]")),
    )


def _observed_from_inspect(info: Mapping[str, Any]) -> Observed:
    labels = info["Config"]["Labels"] or {}
    state = info["State"]
    phase = _phase(state["Status"])
    host_ports: dict[int, int] = {}
    if phase == "running":
        for key, bindings in (info["NetworkSettings"].get("Ports") or {}).items():
            container_port, _, proto = str(key).partition("/")
            if proto == "tcp" and bindings:
                host_ports[int(container_port)] = int(bindings[0]["HostPort"])
    exit_code = int(state["ExitCode"]) if phase == "exited" else None
    return _observed(labels, phase, host_ports, exit_code)


def _host_ports_from_summary(summary: Mapping[str, Any]) -> dict[int, int]:
    return {
        int(mapping["PrivatePort"]): int(mapping["PublicPort"])
        for mapping in summary.get("Ports") or ()
        if mapping.get("PublicPort") and mapping.get("Type", "tcp") == "tcp"
    }


def _url(host_port: int) -> str:
    return f"http://{HOST}:{host_port}"


def _container_name(instance_id: InstanceId) -> str:
    return f"{NAME_PREFIX}{instance_id}"


def _split_lines(chunks: Iterator[bytes]) -> Iterator[str]:
    partial_line = b""
    for chunk in chunks:
        *complete, partial_line = (partial_line + chunk).split(b"\n")
        yield from (_decode(line) for line in complete)
    if partial_line:
        yield _decode(partial_line)


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").removesuffix("\r")


class DockerRuntime:
    """Instances as containers on a Docker engine (see the module docstring)."""

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
        self._client = _connect(docker_host)
        self._where = str(self._client.api.base_url).replace("http+unix://", "unix://")
        self._engine: EngineFacts | None = None
        self._auth_by_repository: dict[str, dict[str, str]] = {}
        self._cpu_samples: dict[InstanceId, tuple[int, int]] = {}

    async def _call(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run a blocking engine call in a thread; a lost engine becomes RuntimeUnavailable."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except requests.ConnectionError as e:
            raise RuntimeUnavailable(
                f"lost the Docker engine at {self._where} ({_short_reason(e)})"
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
        emit = None
        if on_progress is not None:
            loop = asyncio.get_running_loop()

            def emit(line: str) -> None:
                loop.call_soon_threadsafe(on_progress, line)

        if auth:
            self._auth_by_repository[parse_repository_tag(ref)[0]] = dict(auth)
        return await self._call(self._resolve_sync, ref, auth, emit)

    def _resolve_sync(
        self, ref: str, auth: dict[str, str] | None, emit: Callable[[str], None] | None
    ) -> str:
        if _is_digest_ref(ref) and self._local_image(ref) is not None:
            return ref
        try:
            self._pull_sync(ref, auth, emit)
        except ImagePullFailed as e:
            local = self._local_image(ref)
            if local is None or self._pinned_by_registry(ref, local) is not None:
                raise
            if emit is not None:
                emit(f"pulling {ref}: failed ({e.reason}); using the local image")
            log.info("image pull failed, using the local image", image=ref, reason=e.reason)
            return str(local["Id"])
        info = self._local_image(ref)
        if info is None:  # removed between pull and inspect
            raise ImagePullFailed(ref, "the image vanished from the engine after the pull")
        if _is_digest_ref(ref):
            return ref
        return self._pinned_by_registry(ref, info) or str(info["Id"])

    def _pull_sync(
        self, ref: str, auth: dict[str, str] | None, emit: Callable[[str], None] | None
    ) -> None:
        repository, tag = parse_repository_tag(ref)
        progress = PullProgress(ref, emit)
        started = time.monotonic()
        try:
            stream = self._client.api.pull(
                repository, tag=tag or "latest", stream=True, decode=True, auth_config=auth
            )
            for item in stream:
                if "error" in item:
                    detail = item.get("errorDetail") or {}
                    raise ImagePullFailed(ref, str(detail.get("message") or item["error"]))
                progress.update(item)
        except docker.errors.APIError as e:
            raise ImagePullFailed(ref, str(e.explanation or e)) from None
        log.info("image pulled", image=ref, duration_s=round(time.monotonic() - started, 3))

    def _local_image(self, ref: str) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = self._client.api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            return None
        return info

    @staticmethod
    def _pinned_by_registry(ref: str, info: Mapping[str, Any]) -> str | None:
        """``repo@sha256:...`` of ``ref``'s repository, when the image came from its registry."""
        repository = parse_repository_tag(ref)[0]
        for repo_digest in info.get("RepoDigests") or ():
            name, _, digest = str(repo_digest).partition("@")
            if digest and _same_repository(name, repository):
                return f"{repository}@{digest}"
        return None

    def _ensure_image(self, ref: str) -> None:
        if self._local_image(ref) is None:
            auth = self._auth_by_repository.get(parse_repository_tag(ref)[0])
            self._pull_sync(ref, auth, None)

    # -- create --------------------------------------------------------------------------

    async def create(self, spec: InstanceSpec) -> Observed:
        """Create and start the instance's container; one that already runs is returned."""
        if not spec.image:
            raise InvalidSpec("image", "the docker runtime needs an image to run")
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
        name = _container_name(spec.instance_id)
        existing = self._inspect(name)
        if existing is not None:
            if existing["State"]["Status"] == "running":
                return _observed_from_inspect(existing)
            with contextlib.suppress(docker.errors.NotFound):
                self._client.api.remove_container(name, force=True)
        self._ensure_image(image)
        limits = plan_limits(spec.configuration, self._engine_facts())
        container = self._create_container(name, image, spec, limits)
        try:
            container.start()
        except docker.errors.APIError as e:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
            raise InvalidSpec("command", f"cannot start the container: {e.explanation}") from None
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
                labels=_labels(spec, limits, self._installation),
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
            seen = _observed_from_inspect(info)
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
            phase = _phase(str(summary.get("State", "")))
            if phase == "exited":  # the exit code is only in the full inspect
                info = self._inspect(summary["Id"])
                if info is not None:
                    seen.append(_observed_from_inspect(info))
                continue
            host_ports = _host_ports_from_summary(summary) if phase == "running" else {}
            seen.append(_observed(labels, phase, host_ports, None))
        return sorted(seen, key=lambda o: o.instance_id)

    # -- delete --------------------------------------------------------------------------

    async def delete(self, instance_id: InstanceId, *, grace_s: float) -> None:
        """Stop the container (SIGTERM, SIGKILL after ``grace_s``) and remove it."""
        await self._call(self._delete_sync, instance_id, grace_s)
        self._cpu_samples.pop(instance_id, None)

    def _delete_sync(self, instance_id: InstanceId, grace_s: float) -> None:
        name = _container_name(instance_id)
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
        name = _container_name(instance_id)
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
        lines = _split_lines(stream)
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
                self._client.api.stats, _container_name(instance_id), stream=False, one_shot=True
            )
        except docker.errors.NotFound:
            self._cpu_samples.pop(instance_id, None)
            return InstanceStats()
        memory = sample.get("memory_stats") or {}
        if "usage" not in memory:  # not running
            self._cpu_samples.pop(instance_id, None)
            return InstanceStats()
        return InstanceStats(
            cpu_percent=self._cpu_percent(instance_id, sample.get("cpu_stats") or {}),
            memory_bytes=_memory_in_use(memory),
        )

    def _cpu_percent(self, instance_id: InstanceId, cpu: Mapping[str, Any]) -> float:
        """The docker CLI's formula: container CPU time over host CPU time, times CPUs."""
        total = int((cpu.get("cpu_usage") or {}).get("total_usage") or 0)
        system = int(cpu.get("system_cpu_usage") or 0)
        online = int(cpu.get("online_cpus") or 1)
        previous = self._cpu_samples.get(instance_id)
        self._cpu_samples[instance_id] = (total, system)
        if previous is None or system <= previous[1]:
            return 0.0
        return max(0.0, (total - previous[0]) / (system - previous[1]) * online * 100.0)

    async def close(self) -> None:
        """Close the engine connection. Containers keep running: stopping them is the
        controller's job."""
        self._cpu_samples.clear()
        await asyncio.to_thread(self._client.close)


def _memory_in_use(memory: Mapping[str, Any]) -> int:
    """Usage minus reclaimable page cache, as ``docker stats`` shows it."""
    usage = int(memory.get("usage") or 0)
    stats = memory.get("stats") or {}
    inactive = int(stats.get("total_inactive_file", stats.get("inactive_file", 0)) or 0)
    return usage - inactive if inactive < usage else usage


__all__ = ["DockerRuntime", "EngineFacts", "ImagePullFailed", "plan_limits", "probe_engine"]
