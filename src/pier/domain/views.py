"""What the REST API answers: nodes, aliases, instances, events, models, secrets, errors.

One set of pydantic models serves the server (its routes return them, so /openapi.json
shows every field), the SDK (it returns them) and any generated client. Times are ISO
8601 strings with their UTC offset, as ``datetime.isoformat()`` writes them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema

from pier.domain.aliases import AliasShare, AliasSpec
from pier.domain.configurations import Configuration
from pier.domain.instance_status import InstanceStatus
from pier.domain.node_status import NodeStatus
from pier.domain.roles import PrincipalKind, Role
from pier.domain.rollouts import RolloutAction, RolloutPhase, RolloutPlan, StepFigures
from pier.domain.specs import ModelFormat, NodeSpec

Timestamp = Annotated[
    datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A time with its UTC offset: 2025-01-01T12:00:00.123456+00:00."""


class View(BaseModel):
    """Answers ignore fields they do not know: a newer server may add some."""

    model_config = ConfigDict(extra="ignore", use_attribute_docstrings=True)


class InstanceCounts(View):
    healthy: int
    """Instances that pass their health check and take traffic."""
    total: int
    """Instances that exist now, whatever their status."""
    target: int
    """How many instances the node aims for now (the autoscaler's choice)."""


class NodeView(View):
    """A node as users see it: its spec (secret values as '***') and how it is doing."""

    project: str
    name: str
    kind: Literal["model", "image"]
    """model: serves a pushed model (maybe inside an image); image: runs a container."""
    spec: NodeSpec
    """What was asked for; secret_env values are shown as '***'."""
    pinned_image: str | None
    """The image digest the instances run (the tag resolved once), image nodes only."""
    runtime: str
    """Where its instances run (local, docker): chosen when the node is created, kept."""
    status: NodeStatus
    """Created until the node first reaches min_instances; then Healthy or Unhealthy;
    Suspended from ``pier node suspend`` until ``pier node resume`` (no instance runs);
    Deleting once deleted, until its instances are gone."""
    generation: int
    """Goes up with each spec change that replaces the instances (a rolling update)."""
    instances: InstanceCounts
    routed: bool
    """The gateway has the node's route: a request to it is served (or waits for an
    instance), not answered 404."""
    message: str | None
    """Why the node is not Healthy, or what it is doing (an image pull's progress)."""
    crash_looping: bool
    """Its instances keep exiting, or its image cannot be pulled."""
    created_at: Timestamp
    updated_at: Timestamp


class NodeList(View):
    """One page of a project's nodes, by name (byte by byte)."""

    nodes: list[NodeView]
    next_after: str | None = None
    """Pass as ``after`` for the next page; None: this page is the last."""


class AliasNodeView(View):
    """One node of an alias: its share, the share it takes now, and why not all of it."""

    node: str
    share: int
    """Its share in the alias's spec (percent)."""
    effective_share: float
    """The percent of the alias's requests it takes now: the share of a node that is not
    ready goes to the ready ones, in proportion to their shares."""
    ready: bool
    """Healthy at its minimum: it takes alias traffic."""
    why_not_ready: str | None
    """Why it takes no alias traffic ("1/2 Healthy, below its minimum", "deleting",
    "not found"); None when ready."""
    status: NodeStatus | None
    """The node's status; None when no such node exists now."""


class RolloutView(View):
    """An alias's guarded rollout: where it is, what it saw, and its latest decision."""

    alias: str
    plan: RolloutPlan
    phase: RolloutPhase
    """running; completed (the new node takes its last step's share); rolled_back (the
    alias has its shares of before the rollout)."""
    action: RolloutAction
    """What the latest decision did: started, hold, advanced, completed, rolled_back."""
    why: str
    """The latest decision, with the figures and limit that made it."""
    step: int
    """The step running or last run, from 1."""
    percent: int
    """The new node's share at that step."""
    bake_until: Timestamp | None
    """When the step's bake is over; None until the controller first looked."""
    figures: StepFigures
    """The new node's figures on the alias's traffic over the step so far."""
    passed: list[StepFigures]
    """The figures of each step passed."""
    previous: list[AliasShare]
    """The alias's shares before the rollout: what a roll back puts back."""
    shares: list[AliasShare]
    """The shares the rollout gives the alias now."""
    updated_at: Timestamp


class MirrorFiguresView(View):
    """What the gateway saw of one mirror's copies of the alias's requests, since its
    workers started (every worker summed)."""

    node: str
    mirrored: int
    """Copies sent, answered or not."""
    dropped: int
    """Copies not sent: no room in the queue or the in-flight budget, or a body too big."""
    errors: int
    """Copies answered with a 5xx, or not answered (no instance, connection, timeout)."""
    p50_ms: float | None
    p95_ms: float | None
    """Latency of the copies, from the gateway's histogram; None before any."""
    compared: int
    """V2 answers whose outputs were compared with the primary's."""
    equal_share: float | None
    """Of those, the share equal to the primary's within the tolerance; None: none."""
    max_abs_difference: float
    """The largest absolute difference between a mirrored and a primary output."""


class AliasView(View):
    """An alias as users see it: its spec and how its traffic is spread now."""

    project: str
    name: str
    spec: AliasSpec
    nodes: list[AliasNodeView]
    """Each node with a share, in the spec's order."""
    routed: bool
    """Every gateway worker serves the alias as it is now (its latest change is live)."""
    rollout: RolloutView | None = None
    """Its latest guarded rollout, if it had one."""
    mirror_figures: list[MirrorFiguresView] = []
    """Per mirror of its spec, what the gateway saw of the copies (as the control plane
    last read it); empty without mirrors or before the first read."""
    created_at: Timestamp
    updated_at: Timestamp


class AliasList(View):
    aliases: list[AliasView]


class InstanceView(View):
    """One instance of a node: a process or a container running its spec."""

    id: str
    node: str
    status: InstanceStatus
    since: Timestamp
    """When the instance got its current status."""
    endpoint: str | None
    """Base URL the gateway forwards to (http://127.0.0.1:41235), once known."""
    restarts: int
    last_error: str | None
    """The latest failure: a crash, a failed health check, a pull error."""
    generation: int
    """The node generation whose spec the instance runs."""
    runtime: str
    """Where it runs: local (a process) or docker (a container)."""
    pid: int | None
    """The instance's process, on the local runtime."""
    container_id: str | None
    """The instance's container, on the docker runtime."""
    limits_applied: list[str]
    """The configuration's limits the runtime enforces (cpus=2, memory=8 GiB)."""
    limits_not_applied: list[str]
    """The limits it cannot enforce here, each with the reason."""
    created_at: Timestamp


class ControllerFigures(View):
    """How long the controller's recent reconcile passes took (its last 1024 ticks)."""

    ticks: int
    """Ticks since this control plane's controller started (its latest term as leader;
    0 if it never led)."""
    tick_p50_ms: float | None
    tick_p99_ms: float | None
    tick_max_ms: float | None
    role: Literal["leader", "follower"] = "leader"
    """``leader``: this `pier up` runs the controller; ``follower``: another one sharing
    the store does (this one serves the API and takes over if the leader stops)."""
    term: int | None = None
    """The controller lease's term: one more at each change of leader."""
    leader: str | None = None
    """Who leads: ``host address:port`` of its `pier up` (None: nobody yet)."""


class InstanceList(View):
    instances: list[InstanceView]


class InstanceStats(View):
    """What an instance uses now, as its runtime measures it (None: not measurable)."""

    id: str
    status: InstanceStatus
    cpu_percent: float | None
    """Percent of one CPU."""
    memory_bytes: int | None
    """Resident memory."""


class StatsList(View):
    instances: list[InstanceStats]


class EventView(View):
    """Something that happened to a node or in a project, and who did it."""

    id: int
    """Increases with each event: pass the last one seen as ``after`` to follow."""
    time: Timestamp
    kind: str
    """node_created, node_updated, instance_created, instance_healthy, model_pushed..."""
    message: str
    instance: str | None
    """The instance it happened to, if any."""
    actor: str | None
    """Who asked for it (admin); None when pier did it on its own."""


class EventList(View):
    events: list[EventView]


class ModelVersion(View):
    """One pushed version of a model."""

    name: str
    version: int
    """1 for the first push, then one more per push."""
    format: ModelFormat
    sha256: str
    """SHA-256 of the uploaded bytes."""
    size_bytes: int
    created_at: Timestamp
    metadata: dict[str, Any]
    """The model's V2 metadata (inputs and outputs) as the model server read it, and
    ``example_sha256`` when it was pushed with an example request."""


class ModelList(View):
    models: list[ModelVersion]
    """Every version of every model in the project."""


class ModelVersions(View):
    name: str
    versions: list[ModelVersion]


class ModelsDeleted(View):
    name: str
    deleted: list[ModelVersion]
    """The versions that were deleted."""


class SecretWritten(View):
    name: str
    keys: list[str]
    """The secret's keys, sorted; values never come back."""
    created: bool
    """True: a new secret; False: an existing one was replaced."""


class SecretInfo(View):
    name: str
    keys: list[str]
    """The secret's keys, sorted; values never come back."""
    updated_at: Timestamp


class SecretList(View):
    secrets: list[SecretInfo]


class ProjectView(View):
    name: str
    created_at: Timestamp
    nodes: int
    """How many nodes the project has."""
    aliases: int
    """How many aliases the project has."""
    models: int
    """How many models (names, whatever their versions) the project has."""


class ProjectList(View):
    projects: list[ProjectView]
    """The projects the asking token has a role in (every project: the installation admin)."""


class MemberView(View):
    principal: str
    kind: PrincipalKind
    role: Role


class MemberList(View):
    members: list[MemberView]


class ServiceAccountView(View):
    name: str
    project: str
    """The project it belongs to: deleting the project deletes it."""
    role: Role
    created_at: Timestamp


class ServiceAccountList(View):
    service_accounts: list[ServiceAccountView]


class TokenInfo(View):
    """A token as listed: never its value."""

    id: int
    name: str
    project: str
    role: Role
    principal: str | None
    """The user or service account it belongs to (its role there narrows the token's)."""
    created_at: Timestamp
    expires_at: Timestamp | None
    """None: it never expires."""


class TokenList(View):
    tokens: list[TokenInfo]


class TokenCreated(TokenInfo):
    token: str
    """The bearer token itself: shown this once, only its SHA-256 is kept."""


class KeyRotated(View):
    """What `pier secret rotate-key` did."""

    sealed: int
    """Values sealed again with the new key (secrets and nodes' secret_env)."""
    key_source: Literal["file", "environment"]
    """file: <data dir>/secrets.key; environment: PIER_SECRETS_KEY."""
    message: str


class ConfigurationList(View):
    configurations: list[Configuration]


class Info(View):
    version: str
    """pier's version."""
    gateway_url: str
    """Where inference requests go."""
    runtimes: list[str]
    """The runtimes this pier can start instances on (local, docker)."""


class ErrorDetail(View):
    code: str
    """The category: not_found, invalid_spec, conflict, unauthorized, store_unavailable..."""
    type: str
    """The specific error within its category: node_not_found, model_in_use..."""
    message: str
    """For people: what is wrong and, where it helps, what to do."""
    field: str | None = None
    """invalid_spec: the offending field's dotted path (min_instances, health.path)."""
    limit_bytes: int | None = None
    """body_too_large: the limit the body is over."""
    setting: str | None = None
    """body_too_large: the setting that raises the limit."""


class ErrorBody(View):
    """Every error the REST API answers."""

    error: ErrorDetail


class SeriesMetric(StrEnum):
    """What ``/series`` can answer, from pier's own samples (see observability.series)."""

    REQUESTS_PER_S = "requests_per_s"
    ERRORS_PER_S = "errors_per_s"
    ERROR_RATE = "error_rate"
    """5xx answers over all answers."""
    P50 = "p50"
    P95 = "p95"
    P99 = "p99"
    """Quantiles of upstream latency in seconds, from the gateway's histogram buckets."""
    IN_FLIGHT = "in_flight"
    INSTANCES = "instances"
    INSTANCES_HEALTHY = "instances_healthy"
    CPU_PERCENT = "cpu_percent"
    """Per local instance: percent of one CPU."""
    MEMORY_BYTES = "memory_bytes"
    """Per local instance: resident memory."""
    BYTES_IN_PER_S = "bytes_in_per_s"
    """Request bytes (line, headers, body) per second; per instance too."""
    BYTES_OUT_PER_S = "bytes_out_per_s"
    """Bytes written to clients per second; per instance too."""
    INFERENCES_PER_S = "inferences_per_s"
    """Per model node instance: samples inferred per second (its model server's count)."""
    QUEUE_S = "queue_s"
    """Per model node instance: mean time a request waited in the model server's queue."""
    COMPUTE_S = "compute_s"
    """Per model node instance: mean time the model computed per run."""


class SeriesPoint(View):
    t: float
    """Start of the point, seconds since the epoch."""
    value: float | None
    """None where nothing was measured (a quantile with no requests)."""


class SeriesLine(View):
    instance: str | None
    """None for the node's own figures; an instance id for per-instance ones."""
    node: str | None = None
    """Of an alias's series: None for the alias's own figures (every node behind it
    added up), a node's name for that node's share."""
    points: list[SeriesPoint]


class SeriesView(View):
    metric: SeriesMetric
    step: int
    """Seconds each point covers."""
    series: list[SeriesLine]
