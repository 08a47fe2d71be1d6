"""The options of `pier node create` and `pier node update`, shared between them."""

from typing import Annotated

import typer

from pier.domain.configurations import DEFAULT_CONFIGURATION
from pier.domain.specs import DEFAULT_MIN_INSTANCES, DEFAULT_TIMEOUT_S

CREATE_EXAMPLES = """\b
Examples:
  pier node create iris --model iris --min 2 --wait
  pier node create web --image 127.0.0.1:5000/echo:1 --port 8080 --health /healthz --wait
"""
"""The epilog of `pier node create --help`: a model node and an image node."""

NameArg = Annotated[str, typer.Argument(help="Node name.", show_default=False)]
MinOpt = Annotated[
    int | None,
    typer.Option("--min", min=0, metavar="N", help="Minimum instances.", show_default=False),
]
MaxOpt = Annotated[
    int | None,
    typer.Option(
        "--max", min=0, metavar="N", help="Maximum instances (autoscaling).", show_default=False
    ),
]
CreateMinOpt = Annotated[
    int | None,
    typer.Option(
        "--min", min=0, metavar="N", show_default=False,
        help="Minimum instances; 0: none while idle, one starts on the first request. "
        f"[dim]\\[default: {DEFAULT_MIN_INSTANCES}][/dim]",
    ),
]  # fmt: skip
CreateMaxOpt = Annotated[
    int | None,
    typer.Option(
        "--max", min=0, metavar="N", show_default=False,
        help="Maximum instances (autoscaling). [dim]\\[default: as many as --min][/dim]",
    ),
]  # fmt: skip
CreateTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout", min=0, metavar="SECONDS", show_default=False,
        help=f"Whole-request timeout at the gateway (504 past it). [dim]\\[default: "
        f"{DEFAULT_TIMEOUT_S:g}][/dim]",
    ),
]  # fmt: skip
CreateConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config", metavar="NAME", show_default=False,
        help="Configuration (compute profile) such as c1.4; see `pier configuration list`. "
        f"[dim]\\[default: {DEFAULT_CONFIGURATION}][/dim]",
    ),
]  # fmt: skip
"""`create` says which defaults the server applies to what is not given (and sends only what
is given); `update` leaves out what is not given."""
TargetOpt = Annotated[
    float | None,
    typer.Option(
        "--target-in-flight",
        min=0.01,
        metavar="N",
        help="Autoscaling: requests in flight per instance the node aims for (default 4); "
        "the node runs between --min and --max instances to hold it.",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config",
        metavar="NAME",
        help="Configuration (compute profile) such as c1.4; see `pier configuration list`.",
        show_default=False,
    ),
]
EnvOpt = Annotated[
    list[str] | None,
    typer.Option("--env", metavar="KEY=VALUE", help="Environment variable; repeat for more."),
]
SecretEnvOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--secret-env",
        metavar="KEY=VALUE",
        help="Environment variable whose value is never printed back; repeat for more.",
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        min=0,
        metavar="SECONDS",
        help="Whole-request timeout at the gateway (504 past it).",
        show_default=False,
    ),
]
HealthOpt = Annotated[
    str | None,
    typer.Option(
        "--health",
        metavar="PATH",
        help="HTTP health-check path (model nodes: /v2/health/ready).",
        show_default=False,
    ),
]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Show progress until the node is Healthy.")]
WaitTimeoutOpt = Annotated[
    float, typer.Option("--wait-timeout", min=0, metavar="SECONDS", help="How long --wait waits.")
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        metavar="MODEL[:VERSION]",
        help="Serve a pushed model (its newest version unless VERSION is given).",
        show_default=False,
    ),
]
ImageOpt = Annotated[
    str | None,
    typer.Option(
        "--image",
        metavar="REF",
        help="Run a container image. With --model: an image that has pier's model server "
        "(python3 -m pier.modelserver), which serves the model mounted into it.",
        show_default=False,
    ),
]
PortOpt = Annotated[
    int | None,
    typer.Option(
        "--port",
        min=1,
        max=65535,
        metavar="PORT",
        help="Port the image's server listens on.",
        show_default=False,
    ),
]
MetricsOpt = Annotated[
    str | None,
    typer.Option(
        "--metrics",
        metavar="PATH",
        help="Prometheus metrics path on the instance.",
        show_default=False,
    ),
]
RegistrySecretOpt = Annotated[
    str | None,
    typer.Option(
        "--registry-secret",
        metavar="SECRET",
        help="Project secret with the registry's username and password.",
        show_default=False,
    ),
]
CommandOpt = Annotated[
    str | None,
    typer.Option(
        "--command",
        metavar="'CMD ARGS'",
        help="Replace the image's entrypoint (split like a shell would).",
        show_default=False,
    ),
]
ArgOpt = Annotated[
    list[str] | None,
    typer.Option("--arg", metavar="ARG", help="Replace the image's arguments; repeat."),
]
IdleTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--idle-timeout",
        min=0,
        metavar="SECONDS",
        help="Close idle connections to an instance after this long.",
        show_default=False,
    ),
]
HealthProtocolOpt = Annotated[
    str | None,
    typer.Option(
        "--health-protocol",
        metavar="http|tcp|grpc",
        help="How to check health (image nodes without --health: tcp).",
        show_default=False,
    ),
]
HealthPortOpt = Annotated[
    int | None,
    typer.Option(
        "--health-port",
        min=1,
        max=65535,
        metavar="PORT",
        help="Port the health check uses, when not --port (image nodes).",
        show_default=False,
    ),
]
MetricsPortOpt = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        min=1,
        max=65535,
        metavar="PORT",
        help="Port the metrics path is served on, when not --port (image nodes).",
        show_default=False,
    ),
]
HealthIntervalOpt = Annotated[
    float | None,
    typer.Option(
        "--health-interval",
        metavar="SECONDS",
        show_default=False,
        help="Seconds between health checks.",
    ),
]
HealthTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--health-timeout",
        metavar="SECONDS",
        show_default=False,
        help="Timeout of one health check.",
    ),
]
HealthyThresholdOpt = Annotated[
    int | None,
    typer.Option(
        "--healthy-threshold",
        metavar="N",
        show_default=False,
        help="Passes in a row that make an instance Healthy.",
    ),
]
UnhealthyThresholdOpt = Annotated[
    int | None,
    typer.Option(
        "--unhealthy-threshold",
        metavar="N",
        show_default=False,
        help="Failures in a row that make an instance Unhealthy.",
    ),
]
HealthGraceOpt = Annotated[
    float | None,
    typer.Option(
        "--health-grace",
        metavar="SECONDS",
        show_default=False,
        help="How long an instance may stay Unhealthy before it is replaced.",
    ),
]
AccessOpt = Annotated[
    bool | None,
    typer.Option(
        "--public/--private",
        help="Let anyone call the node without a token, or only holders of one.",
        show_default=False,
    ),
]
RolloutWaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="Show progress until every instance runs the new spec and the node is Healthy.",
    ),
]
MaintenanceLimitOpt = Annotated[
    int | None,
    typer.Option(
        "--maintenance-limit",
        min=1,
        metavar="N",
        help="Instances that may be down at once during a rolling update (default 1).",
        show_default=False,
    ),
]
