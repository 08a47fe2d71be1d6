"""Settings: the one configuration object, built once by `pier up` and passed down.

CLI flags map one-to-one onto fields: ``--gateway-port`` and ``PIER_GATEWAY__PORT``
set the same value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    host: str = "127.0.0.1"
    port: int = 8000
    """Where clients send inference requests."""
    max_body_bytes: int = 16 * 2**20
    """Larger requests get 413; larger responses become 502 with a JSON error."""
    workers: int = 1
    """Gateway processes sharing the port (SO_REUSEPORT). A parent process holds the
    listening sockets and replaces a worker that dies, so a crash refuses no connection."""
    max_request_line_bytes: int = 8 * 1024
    """A longer request line (method, target, version) gets 414."""
    max_header_bytes: int = 32 * 1024
    """Request header lines longer than this in total get 431."""
    max_headers: int = 100
    """More request header lines than this get 431."""
    header_timeout_s: float = 60.0
    """A request head not complete this long after its first byte gets 408."""
    body_timeout_s: float = 60.0
    """A request body with no new bytes for this long gets 408."""
    max_pipelined_bytes: int = 2**20
    """While a connection waits for its responses, at most this much more of it is read."""
    max_connections: int = Field(default=4096, ge=1)
    """Client connections each worker keeps open at most (nginx's worker_connections).
    At the cap a new connection takes the place of the one idle longest; with none idle
    it gets 503 ``too_many_connections``. Connections to instances are not counted."""
    max_sticky_sessions: int = Field(default=65536, ge=1)
    """Sticky sessions (of aliases with a sticky header) each worker remembers, to tell
    a caller whose instance went away that it was re-pinned (``x-pier-repinned: 1``). The
    instance a session goes to does not depend on it: that is consistent hashing."""
    mirror_queue_size: int = Field(default=256, ge=1)
    """Mirrored copies waiting to be sent (counting the primaries being recorded for
    them), per worker. A request finding it full is not mirrored: counted as dropped."""
    mirror_max_in_flight: int = Field(default=32, ge=1)
    """Mirrored copies being sent at once, per worker; the others wait in the queue."""
    mirror_max_bytes: int = Field(default=64 * 2**20, ge=0)
    """Request bodies and primary answers held for waiting and in-flight copies, per
    worker; a copy over it is dropped."""
    mirror_max_body_bytes: int = Field(default=2**20, ge=0)
    """Requests with a larger body are not mirrored (dropped); larger answers are not
    compared."""
    mirror_timeout_s: float = Field(default=10.0, gt=0)
    """A copy unanswered this long (or the mirror node's timeout_s, if shorter) is an
    error; a mirror that hangs costs at most mirror_max_in_flight copies at a time."""
    mirror_tolerance: float = Field(default=1e-6, ge=0)
    """A mirrored V2 output equals the primary's when each number is within this,
    absolutely or relatively."""
    mirror_batch_wait_s: float = Field(default=0.0, ge=0, le=10)
    """Above 0, mirrored copies are sent in bursts (of up to mirror_max_in_flight), the
    first of a burst waiting at most this long: the mirror node and the gateway then
    wake once per burst instead of once per copy, but the mirror node gets its copies
    in bursts, which shows in its latency figures. 0 sends each copy at once."""


class GatewayRegistrySettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    timeout_s: Annotated[float, Field(gt=0)] = 15.0
    """A gateway (worker) that has not reported for this long is left out of "routed" and
    "drained" (logged once, and once more when it reports again): a gateway that died or
    hangs does not hold every route change and every drain up."""
    report_interval_s: Annotated[float, Field(gt=0)] = 0.5
    """How often each gateway worker reads its figures, and reports them if they changed
    (traffic); it reports at once when its routes or its draining requests change, and
    at least three times per ``timeout_s`` when nothing does. Told to the gateways in
    each answer."""
    forget_s: Annotated[float, Field(gt=0)] = 3600.0
    """A gateway silent this long is no longer listed."""

    @model_validator(mode="after")
    def _reports_within_the_timeout(self) -> GatewayRegistrySettings:
        if self.report_interval_s >= self.timeout_s:
            raise ValueError(
                "report_interval_s must be below timeout_s: else a busy gateway would be "
                "left out between two reports"
            )
        return self


class ControllerSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    tick_s: float = 0.5
    """How often every node is reconciled. A node's reconcile that takes longer goes on
    in the background: the tick does not wait for it, nor hold up the other nodes."""
    resync_s: Annotated[float, Field(gt=0)] = 10.0
    """A node whose instances are all Healthy, with nothing to do, is reconciled again only
    when something it depends on changes (its spec or state, its target, what the runtime
    or the health checks report), or after this long."""
    backoff_base_s: float = 1.0
    """First delay after an instance crashes; doubles per crash in a row."""
    backoff_max_s: float = 60.0
    stop_grace_s: float = 5.0
    """How long an instance gets to exit after SIGTERM before SIGKILL."""
    autoscale_window_s: float = 6.0
    """Nodes scale on their average requests in flight over this long."""
    scale_down_delay_s: float = 60.0
    """How long a node's load must stay lower before it loses instances."""
    runtime_retry_base_s: float = 2.0
    """A runtime that is missing (no Docker engine answers) is tried again after this
    long, then twice as long each time; its nodes wait for it, they never move."""
    runtime_retry_max_s: float = 60.0
    """The longest wait between two tries of a missing runtime."""
    passive_health: bool = True
    """Skip a Healthy instance's health probe for a round when the gateway's traffic
    showed it answering (below 500) and failing nothing since the last round; the skip
    counts as a pass, and the probe runs again when the traffic stops or fails."""
    passive_health_max_skips: Annotated[int, Field(ge=0)] = 4
    """Rounds skipped in a row at most: every (this + 1)th round probes anyway, so a
    health check that turns failing while the instance still answers its traffic (a
    readiness switched off to drain it) takes it out within that many intervals."""
    max_starting: Annotated[int, Field(ge=0)] = 0
    """Instances starting at once at most, across every node (made and not yet Healthy,
    for less than ``start_slot_s``); the others start on a later tick, as these finish.
    A burst of node creates then shares the CPUs with the control plane (its API, its
    health checks) instead of starving it. 0: eight per CPU of this machine."""
    start_slot_s: Annotated[float, Field(gt=0)] = 20.0
    """How long at most a starting instance counts against ``max_starting``: one slow to
    turn Healthy does not hold the other nodes' starts back longer."""
    model_queue_limit: Annotated[int, Field(ge=1)] = 256
    """Inference requests a model node's instance holds at once (running, waiting for a
    worker thread or a batch); more get 503 at once (the model server's --max-queue)."""


class StoreSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    busy_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    """How long a write waits for a locked store (SQLite's busy timeout, PostgreSQL's
    ``lock_timeout``) before it fails with 503 ``store_unavailable`` (the request can be
    retried)."""
    connect_timeout_s: Annotated[int, Field(ge=1)] = 5
    """PostgreSQL: how long opening a connection may take before the store counts as
    unavailable (whole seconds, libpq's ``connect_timeout``)."""
    pool_size: Annotated[int, Field(ge=1)] = 5
    """PostgreSQL: connections each pier process keeps open."""
    pool_max_overflow: Annotated[int, Field(ge=0)] = 10
    """PostgreSQL: connections opened beyond ``pool_size`` at busy times, closed after."""
    pool_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """PostgreSQL: how long a call waits for a free connection of the pool before it fails
    with 503 ``store_unavailable``."""


class LeaderSettings(BaseModel):
    """Which of the `pier up` processes sharing a PostgreSQL store runs the controller:
    the one holding the lease in the store (pier.domain.lease). On SQLite there is one
    `pier up`, which always holds it."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    lease_s: Annotated[float, Field(gt=0)] = 6.0
    """How long the lease lasts unless renewed: a leader that dies is replaced this long
    after its last renewal at most (plus ``renew_s`` for the follower to notice)."""
    renew_s: Annotated[float, Field(gt=0)] = 2.0
    """How often the leader renews its lease, and a follower asks for it. A leader that
    cannot renew for ``lease_s`` (a lost store, a long pause) stops its controller."""

    @model_validator(mode="after")
    def _renews_within_the_lease(self) -> LeaderSettings:
        if self.renew_s >= self.lease_s:
            raise ValueError(
                f"leader.renew_s ({self.renew_s}) must be shorter than leader.lease_s "
                f"({self.lease_s}), or the lease runs out between two renewals"
            )
        return self


class SeriesSettings(BaseModel):
    """pier's own time series of nodes (``series.db`` beside the store)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    sample_s: Annotated[float, Field(gt=0)] = 5.0
    """How often the control plane samples the gateway and the runtimes."""
    retention_5s_s: Annotated[float, Field(gt=0)] = 3600.0
    """How long 5 s points are kept."""
    retention_1m_s: Annotated[float, Field(gt=0)] = 86400.0
    """How long 1 min points are kept."""
    retention_10m_s: Annotated[float, Field(gt=0)] = 7 * 86400.0
    """How long 10 min points are kept."""
    max_series: Annotated[int, Field(ge=1)] = 20_000
    """(project, node, instance, field) series kept at most; samples of more are dropped
    (logged). With the retentions above one series takes at most 3168 points."""
    model_stats_timeout_s: Annotated[float, Field(gt=0)] = 1.0
    """How long a sample waits for a model node instance's statistics
    (``/v2/models/stats``); one that takes longer is left out of that sample."""

    @property
    def retention_s(self) -> tuple[float, float, float]:
        return (self.retention_5s_s, self.retention_1m_s, self.retention_10m_s)


class ModelSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    max_upload_bytes: Annotated[int, Field(ge=1)] = 4 * 2**30
    """Larger model uploads get 413: refused from Content-Length before the body is read,
    or once a body sent without one grows past it."""
    max_unpacked_bytes: Annotated[int, Field(ge=1)] = 4 * 2**30
    """A Python model archive whose files add up to more is refused (413)."""
    max_files: Annotated[int, Field(ge=1)] = 10_000
    """A Python model archive with more files and directories is refused (422)."""
    max_example_bytes: Annotated[int, Field(ge=1)] = 16 * 2**20
    """A larger example request pushed with a model (--example) is refused (413)."""


class SandboxSettings(BaseModel):
    """How local instances, and the checks of uploaded models, are kept from pier's files
    and environment (see pier.sandbox)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    user: str = "pier-instance"
    """When pier runs as root, local instances run as this unprivileged user; `pier up`
    creates it (useradd --system) if it is missing."""
    root: Path | None = None
    """Where each local instance gets a directory of its own, never inside the data dir.
    Default: /var/lib/pier-instances as root, else <tmp>/pier-instances-<uid>."""
    pass_env: list[str] = Field(default_factory=lambda: ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"])
    """Variables of `pier up`'s environment that instances get too, when set: facts of the
    machine that numerical libraries need, never credentials."""
    fork_model_servers: bool = True
    """Start pier's model server for a local instance as a fork of one process that has
    already imported it (a few milliseconds of CPU, against half a second for an exec that
    imports it again); false: exec each. A node whose env sets a variable read when the
    interpreter or a library starts (``PYTHON*``, ``LD_*``, ``OMP_*``...) is exec'd either
    way (see pier.modelserver.forkserver)."""


class AuthSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    max_token_lifetime_s: Annotated[int, Field(ge=1)] = 366 * 24 * 3600
    """The longest ``expires_in_s`` (`pier token create --expires`) a token may be given."""
    max_tokens_per_project: Annotated[int, Field(ge=1)] = 1000
    """How many tokens a project may have; creating one more is refused (409)."""


class SwarmSettings(BaseModel):
    """The swarm runtime: instances as services on a Docker Swarm."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    docker_host: str | None = None
    """The engine of a swarm manager, e.g. unix:///run/manager.sock or tcp://m1:2375.
    Default: DOCKER_HOST (or the default socket)."""
    reservations: bool = True
    """Reserve each instance's CPUs and memory (its configuration, as for its limits) on
    its machine: the swarm places an instance only where they are still free. False:
    limits only, machines may be overcommitted."""
    start_wait_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    """How long creating an instance waits for its task to start on a machine (scheduling,
    the image pull there) before reporting it as still created."""


class AuditSettings(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    max_entries: Annotated[int, Field(ge=1000)] = 1_000_000
    """The audit log keeps this many of the newest entries; older ones are dropped."""


class ApiSettings(BaseModel):
    """The REST API's lists."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    node_page_size: Annotated[int, Field(ge=1)] = 100
    """How many nodes one page of ``GET /api/v1/projects/{project}/nodes`` holds when the
    request gives no ``limit``."""
    max_node_page_size: Annotated[int, Field(ge=1)] = 1000
    """The largest ``limit`` a page of nodes may ask for (more: 422 naming ``limit``)."""


class UiSettings(BaseModel):
    """The web UI at / on the control plane."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    poll_s: Annotated[float, Field(ge=0.5, le=60)] = 2.0
    """How often an open page refreshes its live parts (statuses, instances, events, logs)."""
    chart_poll_s: Annotated[float, Field(ge=1, le=600)] = 5.0
    """How often an open node page redraws its charts."""
    log_lines: Annotated[int, Field(ge=1, le=10_000)] = 200
    """How many of the newest log lines the log view shows."""
    events: Annotated[int, Field(ge=1, le=10_000)] = 50
    """How many of the newest events the node page shows."""
    max_form_bytes: Annotated[int, Field(ge=1024)] = 1 * 2**20
    """A larger form (a test request's body included) is refused (413)."""
    max_response_bytes: Annotated[int, Field(ge=1024)] = 256 * 2**10
    """The request tab shows at most this much of a response; the rest is cut, saying so."""
    secure_cookie: bool = False
    """Mark the sign-in cookie Secure: set it when the UI is served over HTTPS (a proxy)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PIER_", env_nested_delimiter="__", use_attribute_docstrings=True
    )

    host: str = "127.0.0.1"
    """Address of the control plane (REST API and web UI)."""
    port: int = 8080
    data_dir: Path = Path(".pier")
    """Models, instance logs, the SQLite store and admin.token live here."""
    database_url: str | None = None
    """Default: SQLite (WAL) under data_dir."""
    secrets_key: SecretStr | None = None
    """Fernet keys that seal secret values at rest, separated by commas; the first seals,
    every one opens (rotation). Default: <data dir>/secrets.key, made with mode 0600 on
    first start. Never kept in the store."""
    runtime: Literal["local", "docker", "swarm"] = "local"
    """The runtime pier must have at start-up: ``docker`` makes it refuse to start without
    a Docker engine; ``swarm`` without a swarm manager (``swarm.docker_host``), and image
    nodes that name no runtime then run on the swarm; ``local`` starts without one and
    runs image nodes once an engine answers. Otherwise where a node runs follows from its
    spec (domain/placement.py): model nodes on local, image nodes on docker."""
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    gateway_registry: GatewayRegistrySettings = Field(default_factory=GatewayRegistrySettings)
    controller: ControllerSettings = Field(default_factory=ControllerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    series: SeriesSettings = Field(default_factory=SeriesSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    swarm: SwarmSettings = Field(default_factory=SwarmSettings)
    leader: LeaderSettings = Field(default_factory=LeaderSettings)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'pier.db').resolve()}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def is_shared_store(self) -> bool:
        """Whether other `pier up` may use this store too (a database server, not the
        data dir's SQLite file): they then take turns running the controller."""
        return not self.resolved_database_url.startswith("sqlite")

    @property
    def process_dir(self) -> Path:
        """This `pier up`'s own files (its lock, run marker, gateway state): the data dir,
        or, on a shared store where several `pier up` may share the data dir, a folder in
        it per API port."""
        if not self.is_shared_store:
            return self.data_dir
        return self.data_dir / "processes" / str(self.port)

    @property
    def series_path(self) -> Path:
        return self.data_dir / "series.db"

    @property
    def token_path(self) -> Path:
        return self.data_dir / "admin.token"

    @property
    def secrets_key_path(self) -> Path:
        return self.data_dir / "secrets.key"
