"""The composition root: Settings -> store, runtimes, controller, API, gateway.

`pier up` calls ``run(settings)``. Start-up order matters for restart safety: take the
data dir's lock (one `pier up` per data dir on SQLite; per data dir and API port on a
shared store), bind the API port (fail before touching anything), migrate, take the
controller's lease if free and adopt running instances, then serve. Several `pier up`
sharing a PostgreSQL store and a data dir take turns running the controller
(controller/leadership.py); each serves the whole API, writing to the store itself.

Stopping (SIGINT, SIGTERM, SIGHUP) runs every step whatever the others do: a store that
takes no writes or an output nobody reads any more must not leave instances running.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import os
import secrets
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

import structlog
import uvicorn

from pier.admin_token import ensure_admin_token
from pier.api.app import create_app
from pier.api.deps import Services
from pier.controller.adoption import Adoption
from pier.controller.alias_figures import AliasFiguresBoard
from pier.controller.gateway_registry import GatewayRegistry
from pier.controller.gateway_view import GatewayView
from pier.controller.leader_routes import LeaderRoutes
from pier.controller.leadership import Duties, Leadership
from pier.controller.loop import Controller
from pier.controller.routes import RouteBoard
from pier.controller.sampling import Sampler
from pier.domain.errors import NotFound, RuntimeUnavailable
from pier.domain.names import InstanceId
from pier.domain.tokens import token_digest
from pier.gateway_process import GatewayProcess
from pier.modelserver.triton.distribution import TritonNotInstalled, find_distribution
from pier.observability.series import SeriesStore
from pier.run_marker import RunMarker
from pier.runtimes import load_runtime
from pier.runtimes.base import Runtime
from pier.runtimes.registry import RuntimeRegistry
from pier.sandbox import Sandbox, default_root
from pier.secret_keys import SecretKeys
from pier.services.access import AccessService
from pier.services.aliases import AliasService
from pier.services.audit import AuditService
from pier.services.models import ModelService
from pier.services.nodes import NodeService
from pier.services.projects import ProjectService
from pier.services.quotas import QuotaService
from pier.services.rollouts import RolloutService
from pier.services.secrets import SecretService
from pier.services.series import SeriesService
from pier.settings import Settings
from pier.store import Repository, create_store_engine, migrate
from pier.store.leases import Leases
from pier.store.repository import utcnow

log = structlog.get_logger("pier.server")

Say = Callable[[str], None]
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: `pier up` stops in order itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class RuntimeAccess:
    """Logs and stats of instances over the runtimes: finds which runtime holds one."""

    def __init__(self, repo: Repository, runtimes: Mapping[str, Runtime]) -> None:
        self._repo = repo
        self._runtimes = runtimes

    def _runtime_of(self, instance_id: str) -> Runtime | None:
        name = self._repo.instance_runtime(instance_id)
        return self._runtimes.get(name) if name else None

    async def stats(self, instance_id: str) -> tuple[float | None, int | None]:
        runtime = self._runtime_of(instance_id)
        if runtime is None:
            return None, None
        seen = await runtime.stats(InstanceId(instance_id))
        return seen.cpu_percent, seen.memory_bytes

    async def logs(
        self, instance_id: str, *, follow: bool, tail: int | None = None
    ) -> AsyncIterator[str]:
        runtime = self._runtime_of(instance_id)
        if runtime is None:
            raise NotFound(f"instance {instance_id!r} has no logs")
        async for line in runtime.logs(InstanceId(instance_id), follow=follow, tail=tail):
            yield line


def lock_data_dir(settings: Settings) -> IO[str]:
    """Hold an exclusive lock on this process's dir (settings.process_dir: the data dir,
    or a folder of it per API port on a shared store) for as long as this process lives.

    A data dir pier creates is private to its user (0700): the store in it holds secret
    values and registry credentials."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    process_dir = settings.process_dir
    process_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle = (process_dir / "pier.lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        data_dir = settings.data_dir.resolve()
        raise RuntimeUnavailable(
            f"another `pier up` is already running with data dir {data_dir} and API port "
            f"{settings.port}; choose another --port to run a second one on this store"
            if settings.is_shared_store
            else f"another `pier up` is already running with data dir {data_dir}; a second "
            "`pier up` (a standby that takes over the controller) needs a PostgreSQL store "
            "shared by both (--database-url)"
        ) from None
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


@contextlib.contextmanager
def one_start_at_a_time(data_dir: Path) -> Iterator[None]:
    """Hold the data dir's start lock: several `pier up` sharing a data dir (on a shared
    store) starting at once make its shared files (secrets key, admin token,
    installation id) and migrate the store one after the other, so they all end up
    with the same ones."""
    with (data_dir / "start.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def private_file(path: Path) -> None:
    """Create ``path`` readable by its owner only (SQLite gives its WAL the same mode), or
    narrow an existing one to that."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    path.chmod(0o600)


def bind_socket(host: str, port: int, *, what: str) -> socket.socket:
    # IPPROTO_TCP named: asyncio turns Nagle off (TCP_NODELAY) only on accepted sockets of
    # that protocol; with protocol 0 every small answer on a kept-alive connection waited
    # for the client's delayed ACK, 40 ms
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RuntimeUnavailable(
            f"cannot listen on {host}:{port} for the {what}: {exc.strerror}; choose another port"
        ) from None
    sock.listen(2048)
    return sock


async def run(settings: Settings, say: Say = print) -> None:
    """Run the control plane and the gateway until a stop signal, then stop cleanly."""
    data_dir = settings.data_dir
    lock = lock_data_dir(settings)
    stop = _stop_event()
    marker = RunMarker(settings.process_dir)
    unclean_pid = marker.unclean_pid()
    sock = bind_socket(settings.host, settings.port, what="API")
    with one_start_at_a_time(data_dir):  # the data dir's shared files, made once
        if not settings.database_url:
            private_file(data_dir / "pier.db")
        engine = create_store_engine(settings.resolved_database_url, settings.store)
        migrate(engine)
        secrets_key = settings.secrets_key.get_secret_value() if settings.secrets_key else None
        keys = SecretKeys.load(secrets_key, settings.secrets_key_path)
        repo = Repository(engine, sealer=keys.sealer())
        repo.reseal_secrets()  # seals values kept before sealing; fails early on a wrong key
        repo.ensure_default_project()
        token, created = ensure_admin_token(settings.token_path)
        if repo.principal_of(token_digest(token), utcnow()) is None:
            repo.replace_admin_token(token_digest(token))

        sandbox = Sandbox.prepare(
            (settings.sandbox.root or default_root()) / installation_id(data_dir),
            user=settings.sandbox.user, pass_env=tuple(settings.sandbox.pass_env),
        )  # fmt: skip
    runtimes = load_runtimes(settings, sandbox)
    gateways = GatewayRegistry(settings.gateway_registry)  # the one below, `pier gateway`s
    board = RouteBoard(gateways)
    alias_figures = AliasFiguresBoard()
    gateway = GatewayProcess(settings)

    def make_controller(fence: Callable[[], None]) -> Controller:
        return Controller(
            repo, runtimes, settings=settings.controller,
            models_dir=(data_dir / "models").resolve(), board=board,
            max_body_bytes=settings.gateway.max_body_bytes, gateways=GatewayView(gateways),
            alias_figures=alias_figures, fence=fence,
        )  # fmt: skip

    access = RuntimeAccess(repo, runtimes)

    def make_sampler() -> Sampler:
        return Sampler(
            SeriesStore(settings.series_path, retention_s=settings.series.retention_s,
                        max_series=settings.series.max_series),
            repo, GatewayView(gateways), runtimes,
            interval_s=settings.series.sample_s, model_stats=True,
            model_stats_timeout_s=settings.series.model_stats_timeout_s,
        )  # fmt: skip

    leadership = Leadership(
        Leases(engine), Duties(make_controller, make_sampler),
        holder=lease_holder(settings), settings=settings.leader,
        is_sole=not settings.is_shared_store, say=say,
    )  # fmt: skip
    services = Services(
        repo=repo,
        nodes=NodeService(
            repo,
            routes=board,
            triton_refusal=_triton_refusal,
            container_runtime=container_runtime(settings),
            image_nodes_refusal=_image_nodes_refusal(runtimes, container_runtime(settings)),
            page_size=settings.api.node_page_size,
            max_page_size=settings.api.max_node_page_size,
        ),
        aliases=AliasService(repo, routes=board, mirrors=alias_figures),
        rollouts=RolloutService(repo),
        secrets=SecretService(repo, keys),
        projects=ProjectService(repo),
        access=AccessService(repo, settings.auth),
        models=ModelService(
            repo, (data_dir / "models").resolve(), settings.models, sandbox=sandbox
        ),
        routes=board,
        logs=access,
        stats=access,
        gateway_url=gateway.url,
        runtimes=runtimes,
        audit=AuditService(repo, max_entries=settings.audit.max_entries),
        quotas=QuotaService(repo),
        series=SeriesService(repo, settings.series_path, settings.series.retention_s),
        ui=settings.ui,
        controller=leadership,
        traffic=leadership,
        gateways=gateways,
    )
    server = _ApiServer(
        uvicorn.Config(
            create_app(services), log_level="warning", log_config=None, access_log=False,
            lifespan="off", timeout_graceful_shutdown=1,
        )
    )  # fmt: skip
    marker.begin()
    serving: asyncio.Task[None] | None = None
    following: asyncio.Task[None] | None = None
    try:
        adopted = await leadership.begin()
        if settings.is_shared_store:  # another process may lead: serve its routes meanwhile
            mirror = LeaderRoutes(board, leadership.leader_url, settings.token_path)
            following = asyncio.create_task(mirror.run(), name="leader's routes")
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        gateway_adopted = await asyncio.to_thread(gateway.ensure_running)
        # What start-up made (modules, the app, the store's mappings) lives as long as the
        # process: frozen, a full collection no longer walks it. Unfrozen, with 150 idle
        # nodes, one took 150-220 ms every 25 s or so, the API stalled meanwhile.
        gc.collect()
        gc.freeze()
        _say_started(
            settings,
            say,
            gateway=gateway,
            token_created=created,
            gateway_adopted=gateway_adopted,
            runtimes=tuple(runtimes),
            adopted=adopted,
            leadership=leadership,
            unclean_pid=unclean_pid,
            store=engine.url.render_as_string(hide_password=True),
        )
        while not serving.done() and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            if await asyncio.to_thread(gateway.restart_if_dead):
                log.warning("gateway restarted after it exited")
    finally:
        say("pier: stopping instances and the gateway...")
        is_clean = await _run_steps(
            ("leader's routes", lambda: _cancel(following)),
            ("routes", board.close),
            ("API", lambda: _stop_api(server, serving)),
            ("instances", lambda: leadership.end(stop_instances=True)),
            *((f"{name} runtime", runtime.close) for name, runtime in runtimes.items()),
            ("gateway", lambda: asyncio.to_thread(gateway.stop)),
            ("store", lambda: asyncio.to_thread(engine.dispose)),
        )
        if is_clean:
            marker.end()
            say("pier: stopped; nothing left running.")
        else:
            say("pier: stopped, but not everything could be stopped; see the log above.")
        lock.close()


def _stop_event() -> asyncio.Event:
    """An event set by SIGINT (Ctrl-C), SIGTERM or SIGHUP (the terminal closed)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _stop_api(server: uvicorn.Server, serving: asyncio.Task[None] | None) -> None:
    server.should_exit = True
    if serving is not None:
        with contextlib.suppress(Exception):
            await serving


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _run_steps(*steps: tuple[str, Callable[[], Awaitable[object]]]) -> bool:
    """Run every step of stopping, whatever the others do; True if all succeeded (a step
    returning False did not stop everything it had to)."""
    is_clean = True
    for what, step in steps:
        try:
            result = await step()
        except (Exception, asyncio.CancelledError) as exc:  # nothing aborts stopping
            log.error("stopping failed", step=what, error_type=type(exc).__name__, exc_info=exc)
            is_clean = False
        else:
            is_clean = is_clean and result is not False
    return is_clean


def load_runtimes(settings: Settings, sandbox: Sandbox) -> RuntimeRegistry:
    """The local runtime (its instances in ``sandbox``), and docker whenever an engine
    answers: now, or later (the registry tries again with a backoff). ``--runtime docker``
    (Settings.runtime) requires it at start-up; the setting places no node."""
    from pier.runtimes.docker import probe_engine

    def local() -> Runtime:
        sandbox.check_python()
        state_dir = (settings.data_dir / "instances").resolve()
        return load_runtime(
            "local",
            state_dir=state_dir,
            sandbox=sandbox,
            fork_model_servers=settings.sandbox.fork_model_servers,
        )

    def docker() -> Runtime:
        problem = probe_engine()
        if problem is not None:
            raise RuntimeUnavailable(problem)
        return load_runtime("docker", installation=installation_id(settings.data_dir))

    def swarm() -> Runtime:
        return load_runtime(
            "swarm", docker_host=settings.swarm.docker_host,
            installation=installation_id(settings.data_dir),
            stop_grace_s=settings.controller.stop_grace_s,
            start_wait_s=settings.swarm.start_wait_s, reserve=settings.swarm.reservations,
        )  # fmt: skip

    loaders: dict[str, Callable[[], Runtime]] = {"local": local, "docker": docker}
    if settings.runtime == "swarm" or settings.swarm.docker_host is not None:
        loaders["swarm"] = swarm
    registry = RuntimeRegistry(
        loaders,
        retry_base_s=settings.controller.runtime_retry_base_s,
        retry_max_s=settings.controller.runtime_retry_max_s,
    )
    registry.load()
    problem = registry.why_missing(settings.runtime)
    if problem is not None and settings.runtime != "local":
        raise RuntimeUnavailable(
            f"{problem}; --runtime {settings.runtime} needs it at start-up (--runtime local, "
            "the default, starts without Docker and runs image nodes once an engine answers)"
        )
    return registry


def lease_holder(settings: Settings) -> str:
    """This `pier up`'s name in the controller's lease: where its API is. Only one process
    on a machine can listen there (the API's socket is bound before the lease is asked
    for), so the same name again is a restart, whose lease is taken back at once."""
    return f"{socket.gethostname()} {settings.host}:{settings.port}"


def container_runtime(settings: Settings) -> str:
    """Where image nodes that name no runtime run."""
    return "swarm" if settings.runtime == "swarm" else "docker"


def installation_id(data_dir: Path) -> str:
    """A stable id of this data dir, created once: it labels the containers pier makes."""
    path = data_dir / "installation.id"
    if not path.exists():
        path.write_text(secrets.token_hex(6) + "\n")
    return path.read_text().strip()


def _triton_refusal() -> str | None:
    """Why engine triton nodes cannot run here: no tritonserver installed (looked for at
    each create, so installing one needs no restart)."""
    try:
        find_distribution()
    except TritonNotInstalled as exc:
        return str(exc)
    return None


def _image_nodes_refusal(runtimes: RuntimeRegistry, name: str) -> Callable[[], str | None]:
    def refusal() -> str | None:
        if name in runtimes:
            return None
        return (
            "image nodes need a Docker engine and none answers; start one (e.g. "
            "`sudo dockerd &`, or set DOCKER_HOST for `pier up`): pier notices it on its "
            "own; model nodes work without it"
        )

    return refusal


def _say_started(
    settings: Settings,
    say: Say,
    *,
    gateway: GatewayProcess,
    token_created: bool,
    gateway_adopted: bool,
    runtimes: tuple[str, ...],
    adopted: Adoption | None,
    leadership: Leadership,
    unclean_pid: int | None,
    store: str,
) -> None:
    if unclean_pid is not None and adopted is not None:
        say(f"pier did not stop cleanly last time (pid {unclean_pid}); {adopted.describe()}")
    data = settings.data_dir.resolve()
    token_note = "created now, mode 0600" if token_created else "existing"
    say(f"pier is up (data dir {data})")
    say(f"  API      {settings.api_url}   OpenAPI {settings.api_url}/openapi.json")
    say(f"  web UI   {settings.api_url}/   (sign in with the token below)")
    say(f"  gateway  {gateway.url}" + ("   (adopted: it kept running)" if gateway_adopted else ""))
    say(f"  store    {store}")
    say(f"  runtime  {', '.join(runtimes)}")
    say(f"  token    {settings.token_path.resolve()} ({token_note})")
    if adopted is None:
        leader = leadership.figures().leader or "another `pier up`"
        say(f"  follower the controller runs in {leader}; this one takes over if it stops")
    elif unclean_pid is None and (adopted.instances or adopted.removed):
        say(f"  adopted  {adopted.describe()}, left by the previous `pier up`")
    say("Press Ctrl-C to stop; nodes come back from the store at the next `pier up`.")
