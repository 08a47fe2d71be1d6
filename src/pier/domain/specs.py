"""NodeSpec and its parts: the public shape of what a user asks for.

Validation errors become InvalidSpec naming the field by its dotted path, so the API,
the CLI and the SDK all tell the user which value to fix.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pier.domain.configurations import DEFAULT_CONFIGURATION, get_configuration
from pier.domain.errors import InvalidSpec
from pier.domain.names import MAX_ID, MODEL_NAME_PATTERN, MODEL_NAME_RULE, NAME_PATTERN
from pier.domain.spec_values import (
    Argv,
    FieldError,
    ImageReference,
    PlacementConstraint,
    check_environment,
    check_environment_size,
    grpc_service,
    http_path,
)

DEFAULT_MIN_INSTANCES: Final = 1
DEFAULT_TIMEOUT_S: Final = 60.0
"""Defaults of a node spec that `pier node create --help` shows."""
SECRET_MASK: Final = "***"
"""What users see instead of a secret value."""


class Access(StrEnum):
    PRIVATE = "private"
    PUBLIC = "public"


class ModelFormat(StrEnum):
    ONNX = "onnx"
    SKLEARN = "sklearn"
    PYTHON = "python"
    TRITON = "triton"
    """A Triton model directory (config.pbtxt and version directories): engine triton."""


class Engine(StrEnum):
    """What a model node's instances run."""

    PIER = "pier"
    """pier's own model server (pier.modelserver)."""
    TRITON = "triton"
    """NVIDIA's tritonserver, on a model repository pier writes for the node's model."""


TRITON_METRICS_PORT: Final = 8002
"""Triton's metrics port, as the instance's second port (its own host port each)."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False)


class HealthCheck(_Spec):
    """How pier decides an instance may take traffic."""

    protocol: Literal["http", "tcp", "grpc"] = "http"
    """http: GET path answers 2xx; tcp: the port accepts; grpc: grpc.health.v1 SERVING."""
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """Port the health check uses, when not the node's port (image nodes)."""
    path: str | None = None
    """HTTP path, or the gRPC service name for protocol grpc. Default: /v2/health/ready
    for model nodes; image nodes without a path are checked over TCP."""
    interval_s: Annotated[float, Field(gt=0, le=3600)] = 2.0
    """Seconds between health checks."""
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 1.0
    """Timeout of one health check."""
    healthy_threshold: Annotated[int, Field(ge=1, le=100)] = 1
    """Consecutive passes that make an instance Healthy."""
    unhealthy_threshold: Annotated[int, Field(ge=1, le=100)] = 2
    """Consecutive failures that make an instance Unhealthy (out of balancing)."""
    grace_s: Annotated[float, Field(ge=0, le=86400)] = 30.0
    """How long an instance may stay Unhealthy, or Preparing, before it is replaced."""
    start_timeout_s: Annotated[float, Field(gt=0, le=86400)] = 300.0
    """How long an instance may take to become Healthy the first time."""

    @model_validator(mode="after")
    def _path_fits_the_protocol(self) -> HealthCheck:
        if self.path is not None:
            check = grpc_service if self.protocol == "grpc" else http_path
            try:
                check(self.path)
            except ValueError as exc:
                raise FieldError("health.path", str(exc)) from None
        return self


class Telemetry(_Spec):
    """Where pier scrapes an instance's metrics."""

    format: Literal["prometheus"] = "prometheus"
    """The metrics' text format."""
    path: str | None = None
    """Metrics path on the instance; model nodes expose /metrics."""
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """Port the metrics path is served on, when not the node's port (image nodes)."""

    @field_validator("path")
    @classmethod
    def _http_path(cls, value: str | None) -> str | None:
        return None if value is None else http_path(value)


_APPLIED_LIVE: Final = frozenset(
    {
        "min_instances",
        "max_instances",
        "target_in_flight",
        "maintenance_limit",
        "timeout_s",
        "idle_timeout_s",
        "access",
        "registry_secret",
    }
)
"""NodeSpec fields read by the controller and the gateway, never by an instance."""


class NodeSpec(_Spec):
    """What a user asks for: the source, the endpoint, health, telemetry, provisioning."""

    model: str | None = None
    """Model name in the node's project (a model node)."""
    model_version: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    """Default: the newest version when the node is created (then pinned)."""
    image: ImageReference | None = None
    """Container image reference (an image node). With ``model`` too: an image that has
    pier's model server, which serves the model mounted read-only into each container."""
    registry_secret: str | None = None
    """Project secret holding registry credentials for ``image``."""
    protocol: Literal["http"] = "http"
    """What the gateway speaks to the instances."""
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """Port the image's server listens on inside its container (image nodes)."""
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = DEFAULT_TIMEOUT_S
    """Whole-request timeout at the gateway; 504 past it."""
    max_body_bytes: Annotated[int, Field(ge=1024, le=2**30)] | None = None
    """Largest request body, held at the gateway (413 before any instance sees it, and a
    larger response is 502) and by each model server (413, a compressed body counted
    once inflated). Default: the gateway's max_body_bytes (16 MiB)."""
    idle_timeout_s: Annotated[float, Field(gt=0, le=86400)] | None = None
    """The gateway closes a pooled connection to an instance after this long unused
    (default 4 s): set it below the instance server's own keep-alive timeout."""
    health: HealthCheck = Field(default_factory=HealthCheck)
    """How pier decides an instance may take traffic."""
    telemetry: Telemetry = Field(default_factory=Telemetry)
    """Where pier scrapes an instance's metrics."""
    configuration: str = DEFAULT_CONFIGURATION
    """Configuration (compute profile) of each instance, such as c1.4."""
    min_instances: Annotated[int, Field(ge=0, le=1000)] = DEFAULT_MIN_INSTANCES
    """Minimum instances; 0: none while idle, one starts on the first request."""
    max_instances: Annotated[int, Field(ge=0, le=1000)] | None = None
    """Maximum instances (autoscaling). Default: min_instances."""
    target_in_flight: Annotated[float, Field(gt=0, le=100_000)] = 4.0
    """Autoscaling target: in-flight requests per instance."""
    maintenance_limit: Annotated[int, Field(ge=1, le=1000)] = 1
    """Instances that may be down at once during a rolling update."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables of each instance."""
    secret_env: dict[str, str] = Field(default_factory=dict)
    """Environment values that are never printed back (shown as '***')."""
    command: Argv | None = None
    """Image nodes: replaces the image's entrypoint. A model in an image: how to start
    pier's model server there (default ``python3 -m pier.modelserver``)."""
    args: Argv | None = None
    """Image nodes: replaces the image's arguments. A model in an image: added after the
    model server's own arguments."""
    access: Access = Access.PRIVATE
    """private: callers need a bearer token; public: anyone may call the node."""
    max_batch_size: Annotated[int, Field(ge=1, le=65536)] | None = None
    """Model nodes: dynamic batching, the most rows of concurrent requests combined into
    one model call (for a model whose first dimension is a batch dimension). Default: off
    (1); it pays for models whose call costs more than its rows, under concurrency."""
    batch_delay_ms: Annotated[float, Field(ge=0, le=1000)] | None = None
    """Model nodes with max_batch_size: how long a batch may wait for more requests while
    a worker is free (default 0: it waits only while every worker is busy)."""
    engine: Engine = Engine.PIER
    """Model nodes: the server each instance runs: pier's model server, or NVIDIA's
    tritonserver on a model repository pier writes, dynamic batching included (a local
    instance: the nvidia-pytriton package's; with an image: the image's, which needs pier
    installed too); a Triton model directory needs triton."""
    runtime: Literal["local", "docker", "swarm"] | None = None
    """Where the instances run, fixed when the node is created: local (processes, model
    nodes), docker (containers on one engine) or swarm (services on a Docker Swarm).
    Default: local for a model node; for an image node the container runtime `pier up`
    was started for (``--runtime swarm``), else docker."""
    placement: Annotated[list[PlacementConstraint], Field(max_length=32)] = Field(
        default_factory=list
    )
    """Swarm runtime: constraints on the machines instances may run on, as Docker Swarm
    writes them (node.labels.gpu==true, node.hostname!=m1)."""

    @field_validator("configuration")
    @classmethod
    def _known_configuration(cls, value: str) -> str:
        get_configuration(value)
        return value

    @field_validator("model")
    @classmethod
    def _a_model_name(cls, value: str | None) -> str | None:
        if value is not None and not MODEL_NAME_PATTERN.fullmatch(value):
            raise ValueError(f"{value[:100]!r} is not a valid model name: {MODEL_NAME_RULE}")
        return value

    @field_validator("registry_secret")
    @classmethod
    def _a_name(cls, value: str | None) -> str | None:
        if value is not None and not NAME_PATTERN.match(value):
            raise ValueError(
                f"{value[:100]!r} is not a valid name: use 1-63 lowercase letters, digits "
                "and '-', starting and ending with a letter or digit"
            )
        return value

    @field_validator("env", "secret_env")
    @classmethod
    def _environment(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        check_environment(str(info.field_name), value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NodeSpec:
        check_environment_size(self.env, self.secret_env)
        if self.model is None and self.image is None:
            raise FieldError("model", "give a model, an image, or both")
        if self.model is not None and self.port is not None:
            raise FieldError("port", "a model node's port is chosen by pier")
        if self.model is not None and self.image is None:
            for field in ("command", "args"):
                if getattr(self, field) is not None:
                    raise FieldError(
                        field, f"{field} applies to image nodes (or a model in an image)"
                    )
        if self.image is not None and self.model is None and self.port is None:
            raise FieldError("port", "an image node needs the port its server listens on")
        if self.max_instances is not None and self.max_instances < self.min_instances:
            raise FieldError(
                "max_instances",
                f"max_instances ({self.max_instances}) is below min_instances "
                f"({self.min_instances})",
            )
        if self.engine is Engine.TRITON and self.model is None:
            raise FieldError(
                "engine",
                "engine triton serves a model (--model); an image node runs its image's server",
            )
        if self.engine is Engine.TRITON and self.image is None and self.runtime == "docker":
            raise FieldError(
                "image",
                "engine triton on the docker runtime runs tritonserver in an image you give "
                "(--image): a Triton image with pier installed (the official image plus "
                "`pip install pier`)",
            )
        if self.model is None:
            for field in ("max_batch_size", "batch_delay_ms"):
                if getattr(self, field) is not None:
                    raise FieldError(field, f"{field} applies to model nodes")
        if self.batch_delay_ms is not None and (self.max_batch_size or 1) <= 1:
            raise FieldError(
                "batch_delay_ms", "batch_delay_ms needs max_batch_size above 1 (batching on)"
            )
        if self.model is not None:
            for field, port in (
                ("health.port", self.health.port),
                ("telemetry.port", self.telemetry.port),
            ):
                if port is not None:
                    raise FieldError(
                        field, "pier's model server answers health and metrics on its own port"
                    )
        if self.runtime is not None and (self.runtime == "local") != (self.image is None):
            wanted = "a model node without an image" if self.runtime == "local" else "an image"
            raise FieldError("runtime", f"the {self.runtime} runtime runs {wanted}")
        if self.placement and self.runtime not in (None, "swarm"):
            raise FieldError("placement", "placement applies to the swarm runtime")
        if self.health.path is None and self.health.protocol == "http":
            if self.model is not None:
                self.health.path = "/v2/health/ready"
            else:
                self.health.protocol = "tcp"
        return self

    @property
    def model_in_image(self) -> bool:
        """A model served by the model server inside the user's image."""
        return self.model is not None and self.image is not None

    @property
    def metrics_port(self) -> int | None:
        """The port the instances' metrics are scraped on, when not the node's port."""
        if self.engine is Engine.TRITON:
            return TRITON_METRICS_PORT
        return self.telemetry.port

    @property
    def extra_ports(self) -> tuple[int, ...]:
        """Container ports other than the node's that pier must reach (health, metrics)."""
        ports = {self.health.port, self.metrics_port} - {None, self.port}
        return tuple(sorted(p for p in ports if p is not None))

    @property
    def effective_max(self) -> int:
        return self.min_instances if self.max_instances is None else self.max_instances

    def instance_shape(self) -> dict[str, Any]:
        """What the instances are made from. A change here replaces them one by one (a
        rolling update); the fields left out (instance range, autoscaling, gateway
        timeouts, access, registry credentials, the metrics path) apply to the running
        instances as they are."""
        shape = self.model_dump(mode="json", exclude=set(_APPLIED_LIVE))
        shape["telemetry"] = {"port": self.telemetry.port}
        return shape

    def generation_after(self, previous: NodeSpec, generation: int) -> int:
        """The node's generation once this spec replaces ``previous``: one more when what
        the instances are made from changed (a rolling update replaces them)."""
        return generation + (self.instance_shape() != previous.instance_shape())

    def masked(self) -> NodeSpec:
        """The spec as shown to users: secret values replaced by ``SECRET_MASK``."""
        return self.model_copy(update={"secret_env": dict.fromkeys(self.secret_env, SECRET_MASK)})

    def redacted(self) -> dict[str, Any]:
        """``masked()`` as JSON values."""
        return self.masked().model_dump(mode="json")


def parse_node_spec(data: dict[str, Any]) -> NodeSpec:
    """Validate user input into a NodeSpec, raising InvalidSpec naming the first bad field."""
    try:
        return NodeSpec.model_validate(data)
    except ValidationError as exc:
        raise invalid_spec_from(exc) from None


def invalid_spec_from(exc: ValidationError) -> InvalidSpec:
    """The first pydantic error as an InvalidSpec with a dotted field path."""
    return invalid_spec_from_error(exc.errors()[0])


def invalid_spec_from_error(first: Any) -> InvalidSpec:
    """One pydantic error (an item of ``ValidationError.errors()``) as an InvalidSpec."""
    field = ".".join(str(part) for part in first["loc"]) or "spec"
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, InvalidSpec):
        return cause
    if isinstance(cause, FieldError):
        return InvalidSpec(cause.field, str(cause))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    return InvalidSpec(field, message)
