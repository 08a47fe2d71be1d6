"""The options of `pier node create` and `pier node update`, declared once per spec field.

``SPEC_FLAGS`` is the one table from a NodeSpec field to the flag that sets it: each
option's help is that field's description (flags in place of field names), and an
InvalidSpec from the server is told in flags (``--max (2) is below --min (3)``, not
``max_instances``) by ``in_flags``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Final

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from rich.markup import escape

from pier.domain.errors import InvalidSpec
from pier.domain.specs import NodeSpec

CREATE_EXAMPLES = """\b
Examples:
  pier node create iris --model iris --min 2 --wait
  pier node create web --image 127.0.0.1:5000/echo:1 --port 8080 --health /healthz --wait
"""
"""The epilog of `pier node create --help`: a model node and an image node."""


@dataclass(frozen=True, slots=True)
class SpecFlag:
    """The flag that sets a spec field; ``usage`` says what the flag itself takes."""

    flag: str
    usage: str = ""


SPEC_FLAGS: Final[dict[str, SpecFlag]] = {
    "model": SpecFlag("--model", "MODEL:VERSION pins a version; else the newest one."),
    "model_version": SpecFlag("--model"),
    "image": SpecFlag("--image"),
    "port": SpecFlag("--port"),
    "health.path": SpecFlag("--health"),
    "min_instances": SpecFlag("--min"),
    "max_instances": SpecFlag("--max"),
    "target_in_flight": SpecFlag("--target-in-flight"),
    "maintenance_limit": SpecFlag("--maintenance-limit"),
    "configuration": SpecFlag("--config", "See `pier configuration list`."),
    "env": SpecFlag("--env", "KEY=VALUE; repeat for more (update adds them to the node's)."),
    "secret_env": SpecFlag("--secret-env", "KEY=VALUE; repeat for more."),
    "timeout_s": SpecFlag("--timeout"),
    "telemetry.path": SpecFlag("--metrics"),
    "access": SpecFlag("--public/--private"),
    "registry_secret": SpecFlag("--registry-secret"),
    "command": SpecFlag("--command", "Split like a shell would."),
    "args": SpecFlag("--arg", "Repeat for more."),
    "idle_timeout_s": SpecFlag("--idle-timeout"),
    "max_body_bytes": SpecFlag("--max-body-bytes"),
    "health.protocol": SpecFlag("--health-protocol"),
    "health.port": SpecFlag("--health-port"),
    "telemetry.port": SpecFlag("--metrics-port"),
    "health.interval_s": SpecFlag("--health-interval"),
    "health.timeout_s": SpecFlag("--health-timeout"),
    "health.healthy_threshold": SpecFlag("--healthy-threshold"),
    "health.unhealthy_threshold": SpecFlag("--unhealthy-threshold"),
    "health.grace_s": SpecFlag("--health-grace"),
    "max_batch_size": SpecFlag("--max-batch-size"),
    "batch_delay_ms": SpecFlag("--batch-delay-ms"),
    "engine": SpecFlag("--engine"),
    "runtime": SpecFlag("--runtime"),
    "placement": SpecFlag("--placement", "Repeat for more (update replaces them)."),
}
"""NodeSpec field (dotted path) -> the flag of `pier node create/update` that sets it."""

_FIELD_NAMES: Final = re.compile(
    r"(?<![\w.-])("
    + "|".join(
        re.escape(f) for f in sorted(SPEC_FLAGS, key=len, reverse=True) if "_" in f or "." in f
    )
    + r")(?![\w.])"
)
"""Field names as they appear in messages and descriptions (the ones no word spells)."""


def flag_of(field: str) -> str:
    return SPEC_FLAGS[field].flag.split("/")[0]


def in_flags(text: str) -> str:
    """``text`` with the spec's field names replaced by their flags."""
    return _FIELD_NAMES.sub(lambda match: flag_of(match[1]), text)


def spec_field(path: str) -> FieldInfo:
    """The FieldInfo of a dotted NodeSpec path (``health.path``)."""
    model: type[BaseModel] = NodeSpec
    *groups, name = path.split(".")
    for group in groups:
        annotation = model.model_fields[group].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation
    return model.model_fields[name]


def spec_help(path: str, *, default: str | None = None) -> str:
    """The help of the flag for ``path``: the field's description, in flags, with what the
    flag takes; ``default``: shown as the default the server applies (for create)."""
    description = re.sub(
        r"``([\w.]+)``",
        lambda quoted: flag_of(quoted[1]) if quoted[1] in SPEC_FLAGS else f"`{quoted[1]}`",
        spec_field(path).description or "",
    ).replace("``", "`")
    text = " ".join(f"{description} {SPEC_FLAGS[path].usage}".split())
    if default is not None:
        text = re.sub(r"\s*Default: [^.;]*[.;]", "", text)
    text = escape(in_flags(text))
    return text if default is None else f"{text} [dim]\\[default: {escape(default)}][/dim]"


def spec_option(path: str, *, default: str | None = None, **kwargs: Any) -> Any:
    """The typer.Option that sets ``path``, its help from the spec (see spec_help)."""
    flags = SPEC_FLAGS[path].flag
    return typer.Option(flags, help=spec_help(path, default=default), show_default=False, **kwargs)


@contextlib.contextmanager
def flags_in_errors() -> Iterator[None]:
    """An InvalidSpec about a spec field is told with the flag the user typed."""
    try:
        yield
    except InvalidSpec as exc:
        if exc.field not in SPEC_FLAGS:
            raise
        raise InvalidSpec.from_wire(flag_message(exc), field=exc.field) from None


def flag_message(exc: InvalidSpec) -> str:
    """'max_instances: max_instances (1) is below min_instances (3)' -> '--max (1) is below
    --min (3)'; 'health.path: must start with /' -> '--health: must start with /'."""
    flag = flag_of(exc.field)
    text = in_flags(exc.message.removeprefix(f"{exc.field}: "))
    return text if re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) else f"{flag}: {text}"


NameArg = Annotated[str, typer.Argument(help="Node name.", show_default=False)]
ModelOpt = Annotated[str | None, spec_option("model", metavar="MODEL[:VERSION]")]
ImageOpt = Annotated[str | None, spec_option("image", metavar="REF")]
PortOpt = Annotated[int | None, spec_option("port", min=1, max=65535, metavar="PORT")]
HealthOpt = Annotated[str | None, spec_option("health.path", metavar="PATH")]
MinOpt = Annotated[int | None, spec_option("min_instances", min=0, metavar="N")]
MaxOpt = Annotated[int | None, spec_option("max_instances", min=0, metavar="N")]
CreateMinOpt = Annotated[
    int | None,
    spec_option(
        "min_instances", default=str(spec_field("min_instances").default), min=0, metavar="N"
    ),
]
CreateMaxOpt = Annotated[
    int | None, spec_option("max_instances", default="as many as --min", min=0, metavar="N")
]
TargetOpt = Annotated[float | None, spec_option("target_in_flight", min=0.01, metavar="N")]
MaintenanceLimitOpt = Annotated[int | None, spec_option("maintenance_limit", min=1, metavar="N")]
ConfigOpt = Annotated[str | None, spec_option("configuration", metavar="NAME")]
CreateConfigOpt = Annotated[
    str | None,
    spec_option("configuration", default=str(spec_field("configuration").default), metavar="NAME"),
]
EnvOpt = Annotated[list[str] | None, spec_option("env", metavar="KEY=VALUE")]
SecretEnvOpt = Annotated[list[str] | None, spec_option("secret_env", metavar="KEY=VALUE")]
TimeoutOpt = Annotated[float | None, spec_option("timeout_s", min=0, metavar="SECONDS")]
CreateTimeoutOpt = Annotated[
    float | None,
    spec_option(
        "timeout_s", default=f"{spec_field('timeout_s').default:g}", min=0, metavar="SECONDS"
    ),
]
MetricsOpt = Annotated[str | None, spec_option("telemetry.path", metavar="PATH")]
AccessOpt = Annotated[bool | None, spec_option("access")]
RegistrySecretOpt = Annotated[str | None, spec_option("registry_secret", metavar="SECRET")]
CommandOpt = Annotated[str | None, spec_option("command", metavar="'CMD ARGS'")]
ArgOpt = Annotated[list[str] | None, spec_option("args", metavar="ARG")]
RuntimeOpt = Annotated[str | None, spec_option("runtime", metavar="local|docker|swarm")]
PlacementOpt = Annotated[list[str] | None, spec_option("placement", metavar="CONSTRAINT")]
IdleTimeoutOpt = Annotated[float | None, spec_option("idle_timeout_s", min=0, metavar="SECONDS")]
MaxBodyOpt = Annotated[int | None, spec_option("max_body_bytes", min=1, metavar="BYTES")]
HealthProtocolOpt = Annotated[str | None, spec_option("health.protocol", metavar="http|tcp|grpc")]
HealthPortOpt = Annotated[int | None, spec_option("health.port", min=1, max=65535, metavar="PORT")]
MetricsPortOpt = Annotated[
    int | None, spec_option("telemetry.port", min=1, max=65535, metavar="PORT")
]
HealthIntervalOpt = Annotated[float | None, spec_option("health.interval_s", metavar="SECONDS")]
HealthTimeoutOpt = Annotated[float | None, spec_option("health.timeout_s", metavar="SECONDS")]
HealthyThresholdOpt = Annotated[int | None, spec_option("health.healthy_threshold", metavar="N")]
UnhealthyThresholdOpt = Annotated[
    int | None, spec_option("health.unhealthy_threshold", metavar="N")
]
HealthGraceOpt = Annotated[float | None, spec_option("health.grace_s", metavar="SECONDS")]
MaxBatchSizeOpt = Annotated[int | None, spec_option("max_batch_size", min=1, metavar="N")]
BatchDelayOpt = Annotated[float | None, spec_option("batch_delay_ms", min=0, metavar="MS")]
EngineOpt = Annotated[str | None, spec_option("engine", metavar="pier|triton")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Show progress until the node is Healthy.")]
WaitTimeoutOpt = Annotated[
    float, typer.Option("--wait-timeout", min=0, metavar="SECONDS", help="How long --wait waits.")
]
RolloutWaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="Show progress until every instance runs the new spec and the node is Healthy.",
    ),
]
