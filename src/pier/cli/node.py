"""`pier node ...`: create, inspect, change and delete nodes, and follow their instances."""

import json
import shlex
from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from pydantic_core import to_jsonable_python

from pier.cli.context import OutputOpt, ProjectOpt, cli_state
from pier.cli.node_options import (
    CREATE_EXAMPLES,
    AccessOpt,
    ArgOpt,
    BatchDelayOpt,
    CommandOpt,
    ConfigOpt,
    CreateConfigOpt,
    CreateMaxOpt,
    CreateMinOpt,
    CreateTimeoutOpt,
    EngineOpt,
    EnvOpt,
    HealthGraceOpt,
    HealthIntervalOpt,
    HealthOpt,
    HealthPortOpt,
    HealthProtocolOpt,
    HealthTimeoutOpt,
    HealthyThresholdOpt,
    IdleTimeoutOpt,
    ImageOpt,
    MaintenanceLimitOpt,
    MaxBatchSizeOpt,
    MaxBodyOpt,
    MaxOpt,
    MetricsOpt,
    MetricsPortOpt,
    MinOpt,
    ModelOpt,
    NameArg,
    PlacementOpt,
    PortOpt,
    RegistrySecretOpt,
    RolloutWaitOpt,
    RuntimeOpt,
    SecretEnvOpt,
    TargetOpt,
    TimeoutOpt,
    UnhealthyThresholdOpt,
    WaitOpt,
    WaitTimeoutOpt,
    flags_in_errors,
)
from pier.cli.node_top import top
from pier.cli.output import (
    Column,
    age,
    clock,
    print_fields,
    print_json,
    print_line,
    print_table,
    stderr,
    stopped_by_ctrl_c,
)
from pier.client import Client, NodeProgress
from pier.domain.instance_status import InstanceStatus
from pier.domain.node_status import NodeStatus
from pier.domain.specs import NodeSpec
from pier.domain.views import EventView, InstanceView, NodeView

app = typer.Typer(no_args_is_help=True, help="Create, inspect, update and delete nodes.")

JSON = dict[str, Any]

_S = InstanceStatus
PROGRESS_ORDER = tuple(
    status.value
    for status in (
        _S.HEALTHY,
        _S.UNHEALTHY,
        _S.PREPARING,
        _S.STARTED,
        _S.CREATED,
        _S.UNDEFINED,
        _S.DELETING,
    )
)
"""Instance statuses as `--wait` lists them: the goal first."""

NODE_COLUMNS = (
    Column("NAME"),
    Column("STATUS"),
    Column("INSTANCES"),
    Column("SOURCE"),
    Column("CONFIG"),
    Column("MIN-MAX"),
    Column("GENERATION", wide=True),
    Column("AGE"),
    Column("MESSAGE", cut=True),
)
HANDLE_HEADER = "PID/CONTAINER"
"""The instance's process id (local runtime) or container id (docker): `PID` or `CONTAINER`
when all instances are of one kind."""
INSTANCE_COLUMNS = (
    Column("ID"),
    Column("STATUS"),
    Column("SINCE"),
    Column("RESTARTS"),
    Column(HANDLE_HEADER),
    Column("ENDPOINT"),
    Column("GENERATION", wide=True),
    Column("LIMITS", cut=True, wide=True),
    Column("NOT ENFORCED", cut=True, wide=True),
    Column("LAST ERROR", cut=True),
)
EVENT_COLUMNS = (
    Column("TIME"),
    Column("KIND"),
    Column("INSTANCE"),
    Column("ACTOR", wide=True),
    Column("MESSAGE", cut=True),
)
SHORT_CONTAINER_ID = 12
"""As `docker ps` shows container ids (docker commands take them)."""


@app.command(epilog=CREATE_EXAMPLES)
def create(
    ctx: typer.Context,
    name: NameArg,
    model: ModelOpt = None,
    image: ImageOpt = None,
    port: PortOpt = None,
    health: HealthOpt = None,
    min_instances: CreateMinOpt = None,
    max_instances: CreateMaxOpt = None,
    target_in_flight: TargetOpt = None,
    maintenance_limit: MaintenanceLimitOpt = None,
    configuration: CreateConfigOpt = None,
    env: EnvOpt = None,
    secret_env: SecretEnvOpt = None,
    timeout: CreateTimeoutOpt = None,
    metrics: MetricsOpt = None,
    access: AccessOpt = None,
    registry_secret: RegistrySecretOpt = None,
    command: CommandOpt = None,
    arg: ArgOpt = None,
    idle_timeout: IdleTimeoutOpt = None,
    max_body_bytes: MaxBodyOpt = None,
    health_protocol: HealthProtocolOpt = None,
    health_port: HealthPortOpt = None,
    metrics_port: MetricsPortOpt = None,
    health_interval: HealthIntervalOpt = None,
    health_timeout: HealthTimeoutOpt = None,
    healthy_threshold: HealthyThresholdOpt = None,
    unhealthy_threshold: UnhealthyThresholdOpt = None,
    health_grace: HealthGraceOpt = None,
    max_batch_size: MaxBatchSizeOpt = None,
    batch_delay: BatchDelayOpt = None,
    engine: EngineOpt = None,
    runtime: RuntimeOpt = None,
    placement: PlacementOpt = None,
    wait: WaitOpt = False,
    wait_timeout: WaitTimeoutOpt = 300.0,
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Create a node from a model, a container image, or a model served from an image."""
    if model is None and image is None:
        ctx.fail("give --model MODEL[:VERSION], --image REF, or both")
    spec = spec_fields(
        model=parse_model_ref(model) if model else None, image=image, port=port,
        min_instances=min_instances, max_instances=max_instances,
        target_in_flight=target_in_flight, maintenance_limit=maintenance_limit,
        configuration=configuration, timeout=timeout,
        env=parse_env(env, "--env"), secret_env=parse_env(secret_env, "--secret-env"),
        health=_optional(
            path=health, protocol=health_protocol, port=health_port, interval_s=health_interval,
            timeout_s=health_timeout, healthy_threshold=healthy_threshold,
            unhealthy_threshold=unhealthy_threshold, grace_s=health_grace,
        ),
        telemetry=_optional(path=metrics, port=metrics_port),
        registry_secret=registry_secret, command=command, args=arg, idle_timeout=idle_timeout,
        access=_access(access), max_batch_size=max_batch_size, batch_delay_ms=batch_delay,
        max_body_bytes=max_body_bytes, engine=engine, runtime=runtime, placement=placement,
    )  # fmt: skip
    state = cli_state(ctx, output=output, project=project)
    client = state.client()
    with flags_in_errors():
        node = client.create_node(name, spec=spec)
    if not state.is_json:
        print_line(f"created node [bold]{name}[/] in project {state.project}: {node.status}")
    if wait:
        node = wait_healthy(client, name, timeout_s=wait_timeout)
    if state.is_json:
        print_json(node)


@app.command("list")
def list_nodes(ctx: typer.Context, output: OutputOpt = None, project: ProjectOpt = None) -> None:
    """List the nodes of the project."""
    state = cli_state(ctx, output=output, project=project)
    nodes = state.client().list_nodes()
    if state.is_json:
        print_json({"nodes": nodes})
        return
    print_table(NODE_COLUMNS, (_node_row(node) for node in nodes), wide=state.is_wide)


@app.command()
def get(
    ctx: typer.Context, name: NameArg, output: OutputOpt = None, project: ProjectOpt = None
) -> None:
    """Show a node: status, spec (secrets hidden) and why it is not Healthy."""
    state = cli_state(ctx, output=output, project=project)
    node = state.client().get_node(name)
    if state.is_json:
        print_json(node)
        return
    spec = node.spec
    print_fields(
        [
            ("name", node.name),
            ("project", node.project),
            ("status", node.status),
            ("instances", _instance_counts(node)),
            ("source", _source(spec)),
            ("configuration", spec.configuration),
            ("min-max", _range(spec)),
            ("target in flight", f"{spec.target_in_flight:g} per instance"),
            *([("batching", _batching(spec))] if spec.max_batch_size else []),
            *([("engine", spec.engine)] if spec.model else []),
            (
                "maintenance limit",
                f"{spec.maintenance_limit} instance(s) down at once in a rolling update",
            ),
            ("runtime", node.runtime),
            ("access", spec.access),
            ("port", spec.port),
            ("timeout", f"{spec.timeout_s:g}s"),
            ("health", spec.health.path),
            ("metrics", spec.telemetry.path),
            ("env", spec.env),
            ("secret env", spec.secret_env),
            ("generation", node.generation),
            ("created", node.created_at.isoformat()),
            ("updated", node.updated_at.isoformat()),
            *([("crash looping", "yes")] if node.crash_looping else []),
            ("message", node.message),
        ]
    )


@app.command()
def update(
    ctx: typer.Context,
    name: NameArg,
    model: ModelOpt = None,
    image: ImageOpt = None,
    port: PortOpt = None,
    health: HealthOpt = None,
    min_instances: MinOpt = None,
    max_instances: MaxOpt = None,
    target_in_flight: TargetOpt = None,
    maintenance_limit: MaintenanceLimitOpt = None,
    configuration: ConfigOpt = None,
    env: EnvOpt = None,
    secret_env: SecretEnvOpt = None,
    timeout: TimeoutOpt = None,
    metrics: MetricsOpt = None,
    access: AccessOpt = None,
    registry_secret: RegistrySecretOpt = None,
    command: CommandOpt = None,
    arg: ArgOpt = None,
    idle_timeout: IdleTimeoutOpt = None,
    max_body_bytes: MaxBodyOpt = None,
    health_protocol: HealthProtocolOpt = None,
    health_port: HealthPortOpt = None,
    metrics_port: MetricsPortOpt = None,
    health_interval: HealthIntervalOpt = None,
    health_timeout: HealthTimeoutOpt = None,
    healthy_threshold: HealthyThresholdOpt = None,
    unhealthy_threshold: UnhealthyThresholdOpt = None,
    health_grace: HealthGraceOpt = None,
    max_batch_size: MaxBatchSizeOpt = None,
    batch_delay: BatchDelayOpt = None,
    engine: EngineOpt = None,
    runtime: RuntimeOpt = None,
    placement: PlacementOpt = None,
    wait: RolloutWaitOpt = False,
    wait_timeout: WaitTimeoutOpt = 300.0,
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Change a node. A new image, model version, env, command, port, configuration or
    health check replaces its instances one by one, each drained before it stops; the
    instance range, timeouts and access apply to the running instances."""
    model_ref = parse_model_ref(model) if model else None
    if model_ref is not None:
        model_ref.setdefault("model_version", None)  # no version given: the newest one
    changes = spec_fields(
        model=model_ref, image=image, port=port, min_instances=min_instances,
        max_instances=max_instances, target_in_flight=target_in_flight,
        maintenance_limit=maintenance_limit, configuration=configuration, timeout=timeout,
        env=parse_env(env, "--env"), secret_env=parse_env(secret_env, "--secret-env"),
        health=_optional(
            path=health, protocol=health_protocol, port=health_port, interval_s=health_interval,
            timeout_s=health_timeout, healthy_threshold=healthy_threshold,
            unhealthy_threshold=unhealthy_threshold, grace_s=health_grace,
        ),
        telemetry=_optional(path=metrics, port=metrics_port),
        registry_secret=registry_secret, command=command, args=arg, idle_timeout=idle_timeout,
        access=_access(access), max_batch_size=max_batch_size, batch_delay_ms=batch_delay,
        max_body_bytes=max_body_bytes, engine=engine, runtime=runtime, placement=placement,
    )  # fmt: skip
    if not changes:
        ctx.fail("nothing to update: give at least one option (see --help)")
    state = cli_state(ctx, output=output, project=project)
    client = state.client()
    before = client.get_node(name).generation  # to tell whether a rollout started
    seen_up_to = client.last_event_id(name) if wait else None  # --wait shows what follows
    with flags_in_errors():
        node = client.update_node(name, spec=changes)  # the server merges env key by key
    if not state.is_json:
        how = (
            "replacing its instances one by one"
            if node.generation != before
            else "applied to the running instances"
        )
        print_line(f"updated node [bold]{name}[/] (generation {node.generation}): {how}")
    if wait:
        node = wait_healthy(
            client, name, timeout_s=wait_timeout, generation=node.generation, after=seen_up_to
        )
    if state.is_json:
        print_json(node)


@app.command()
def delete(
    ctx: typer.Context,
    name: NameArg,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the node is gone.")] = False,
    wait_timeout: WaitTimeoutOpt = 120.0,
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Delete a node; its instances are stopped first."""
    state = cli_state(ctx, output=output, project=project)
    client = state.client()
    node = client.delete_node(name)
    if wait:
        with stderr.status(f"{name}: Deleting — waiting for its instances to stop"):
            client.wait_node_deleted(name, timeout_s=wait_timeout)
    if state.is_json:
        print_json(node)
    elif wait:
        print_line(f"deleted node [bold]{name}[/]")
    else:
        print_line(f"node [bold]{name}[/]: {node.status} (gone once its instances stop)")


@app.command()
def suspend(
    ctx: typer.Context,
    name: NameArg,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until the node's instances are stopped.")
    ] = False,
    wait_timeout: WaitTimeoutOpt = 120.0,
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Suspend a node: drain and stop its instances, keep its spec (resume brings it back)."""
    state = cli_state(ctx, output=output, project=project)
    client = state.client()
    node = client.suspend_node(name)
    if wait:
        with stderr.status(f"{name}: Suspended — waiting for its instances to stop"):
            node = client.wait_node_stopped(name, timeout_s=wait_timeout)
    if state.is_json:
        print_json(node)
    else:
        left = "" if node.instances.total == 0 else " (its instances are stopping)"
        print_line(f"node [bold]{name}[/]: {node.status}{left}")


@app.command()
def resume(
    ctx: typer.Context,
    name: NameArg,
    wait: WaitOpt = False,
    wait_timeout: WaitTimeoutOpt = 300.0,
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Resume a suspended node: it is brought back to its minimum of instances."""
    state = cli_state(ctx, output=output, project=project)
    client = state.client()
    after = client.last_event_id(name) if wait else None
    node = client.resume_node(name)
    if wait:
        node = wait_healthy(client, name, timeout_s=wait_timeout, after=after)
    if state.is_json:
        print_json(node)
    elif not wait:
        print_line(f"node [bold]{name}[/]: {node.status}")


@app.command()
def instances(
    ctx: typer.Context, name: NameArg, output: OutputOpt = None, project: ProjectOpt = None
) -> None:
    """List a node's instances with their statuses."""
    state = cli_state(ctx, output=output, project=project)
    items = state.client().instances(name)
    if state.is_json:
        print_json({"instances": items})
        return
    columns = tuple(
        Column(_handle_header(items)) if column.header == HANDLE_HEADER else column
        for column in INSTANCE_COLUMNS
    )
    print_table(columns, (_instance_row(item) for item in items), wide=state.is_wide)


@app.command()
def events(
    ctx: typer.Context,
    name: NameArg,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest last.")] = 100,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep printing new events (Ctrl-C stops)."),
    ] = False,
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Show a node's events (who did what, and what happened to its instances)."""
    state = cli_state(ctx, output=output, project=project)
    if follow:
        _follow_events(state.client(), name, limit=limit, as_json=state.is_json)
        return
    items = state.client().events(name, limit=limit)
    if state.is_json:
        print_json({"events": items})
        return
    print_table(EVENT_COLUMNS, (_event_row(e) for e in items), wide=state.is_wide)


@app.command()
def logs(
    ctx: typer.Context,
    name: NameArg,
    instance: Annotated[
        str | None,
        typer.Option("--instance", "-i", help="One instance's logs only.", show_default=False),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    tail: Annotated[
        int | None,
        typer.Option("--tail", min=0, help="Only the last N lines.", show_default=False),
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Print the logs of a node's instances, each line prefixed by its instance."""
    client = cli_state(ctx, project=project).client()
    with stopped_by_ctrl_c():
        for line in client.logs(name, instance=instance, follow=follow, tail=tail):
            typer.echo(line)


def _follow_events(client: Client, name: str, *, limit: int, as_json: bool) -> None:
    """One line per event (JSON lines with --output json) until Ctrl-C or the node is gone."""
    with stopped_by_ctrl_c():
        for event in client.follow_events(name, limit=limit):
            if as_json:
                typer.echo(json.dumps(to_jsonable_python(event), ensure_ascii=False))
            else:
                typer.echo(describe_event(event, indent=""))
    if not as_json:
        print_line(f"node [bold]{name}[/] is gone")


def wait_healthy(
    client: Client,
    name: str,
    *,
    timeout_s: float,
    generation: int | None = None,
    after: int | None = None,
) -> NodeView:
    """Wait for a node to be Healthy (with every instance of ``generation`` when given) with
    a live status line on stderr, and the events after ``after``; its last state."""
    with stderr.status(f"{name}: waiting to be Healthy") as status:

        def on_progress(progress: NodeProgress) -> None:
            for event in progress.new_events:
                stderr.print(describe_event(event), markup=False)
            status.update(describe_progress(progress.node, progress.instances))

        node = client.wait_node(
            name, timeout_s=timeout_s, generation=generation, on_progress=on_progress, after=after
        )
    stderr.print(f"[green]✓[/] {describe_progress(node, client.instances(name))}")
    return node


def describe_progress(node: NodeView, instances: Sequence[InstanceView]) -> str:
    """'iris: Created — instances: 1 Healthy, 1 Preparing'."""
    counts = Counter(item.status.value for item in instances)
    parts = [f"{counts[status]} {status}" for status in PROGRESS_ORDER if counts[status]]
    parts += [f"{n} {status}" for status, n in counts.items() if status not in PROGRESS_ORDER]
    line = f"{node.name}: {node.status} — instances: {', '.join(parts) or 'none yet'}"
    older = [i for i in instances if i.generation < node.generation]
    if older:
        line += f" — {len(older)} of {len(instances)} still on an older spec"
    message = _first_line(node.message)
    if message and node.status is not NodeStatus.HEALTHY:
        line += f" — {message}"  # e.g. the image pull's progress
    elif node.status is NodeStatus.HEALTHY and not node.routed:
        line += " — waiting for the gateway to route it"
    return line


def describe_event(event: EventView, *, indent: str = "  ") -> str:
    """'12:00:01 [i-abc] instance_created: message'."""
    instance = f" [{event.instance}]" if event.instance else ""
    return f"{indent}{clock(event.time)}{instance} {event.kind}: {event.message}"


def parse_model_ref(ref: str) -> JSON:
    """'iris' -> {model: iris}; 'iris:3' -> {model: iris, model_version: 3}."""
    model, sep, version = ref.partition(":")
    if not sep:
        return {"model": model}
    if not version.isdigit() or int(version) < 1:
        raise typer.BadParameter(
            f"expected MODEL[:VERSION] with a version number, got {ref!r}", param_hint="--model"
        )
    return {"model": model, "model_version": int(version)}


def parse_env(pairs: Sequence[str] | None, option: str) -> dict[str, str] | None:
    """['A=1', 'B=x=y'] -> {'A': '1', 'B': 'x=y'}; None when the option was not given."""
    if not pairs:
        return None
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=option)
        env[key] = value
    return env


def spec_fields(
    *,
    model: JSON | None,
    image: str | None,
    port: int | None,
    min_instances: int | None,
    max_instances: int | None,
    target_in_flight: float | None,
    maintenance_limit: int | None,
    configuration: str | None,
    timeout: float | None,
    env: JSON | None,
    secret_env: JSON | None,
    health: JSON,
    telemetry: JSON,
    registry_secret: str | None,
    command: str | None,
    args: list[str] | None,
    idle_timeout: float | None,
    access: str | None,
    max_batch_size: int | None = None,
    batch_delay_ms: float | None = None,
    max_body_bytes: int | None = None,
    engine: str | None = None,
    runtime: str | None = None,
    placement: list[str] | None = None,
) -> JSON:
    """The spec fields given on the command line, in the API's names; None: not given."""
    spec: JSON = {**(model or {})}
    spec.update(
        _optional(
            image=image, port=port, min_instances=min_instances, max_instances=max_instances,
            target_in_flight=target_in_flight, maintenance_limit=maintenance_limit,
            configuration=configuration, timeout_s=timeout,
            env=env, secret_env=secret_env, health=health or None,
            telemetry=telemetry or None, registry_secret=registry_secret,
            command=shlex.split(command) if command is not None else None, args=args or None,
            idle_timeout_s=idle_timeout, access=access,
            max_batch_size=max_batch_size, batch_delay_ms=batch_delay_ms,
            max_body_bytes=max_body_bytes, engine=engine, runtime=runtime,
            placement=placement or None,
        )
    )  # fmt: skip
    return spec


def _batching(spec: NodeSpec) -> str:
    """Dynamic batching as `pier node get` shows it."""
    return f"up to {spec.max_batch_size} rows, waiting up to {spec.batch_delay_ms or 0:g} ms"


def _access(public: bool | None) -> str | None:
    """--public / --private as the spec's access; None when neither was given."""
    return None if public is None else ("public" if public else "private")


def _optional(**fields: Any) -> JSON:
    return {key: value for key, value in fields.items() if value is not None}


def _node_row(node: NodeView) -> tuple[object, ...]:
    return (
        node.name,
        node.status,
        _instance_counts(node),
        _source(node.spec),
        node.spec.configuration,
        _range(node.spec),
        node.generation,
        age(node.created_at),
        _first_line(node.message, max_chars=None),
    )


def _instance_row(item: InstanceView) -> tuple[object, ...]:
    container = item.container_id
    return (
        item.id,
        item.status,
        age(item.since),
        item.restarts,
        item.pid or (container[:SHORT_CONTAINER_ID] if container else None),
        item.endpoint,
        item.generation,
        item.limits_applied,
        item.limits_not_applied,
        _first_line(item.last_error, max_chars=None),
    )


def _handle_header(items: Sequence[InstanceView]) -> str:
    if items and all(item.container_id is None for item in items):
        return "PID"
    if items and all(item.pid is None for item in items):
        return "CONTAINER"
    return HANDLE_HEADER


def _event_row(event: EventView) -> tuple[object, ...]:
    return (clock(event.time), event.kind, event.instance, event.actor, event.message)


def _instance_counts(node: NodeView) -> str:
    counts = node.instances
    if not counts.total and counts.target == 0:
        return "0/0 (scaled to zero)"  # --min 0 and idle: the next request starts one
    text = f"{counts.healthy}/{counts.total} Healthy"
    if counts.target != counts.total:
        text += f", scaling to {counts.target}"
    return text


def _source(spec: NodeSpec) -> str:
    version = spec.model_version
    model = f"model {spec.model}" + (f":{version}" if version else "")
    if spec.image and spec.model:
        return f"{model} in image {spec.image}"
    if spec.image:
        return f"image {spec.image}"
    return model


def _range(spec: NodeSpec) -> str:
    return f"{spec.min_instances}-{spec.effective_max}"


def _first_line(text: str | None, *, max_chars: int | None = 80) -> str | None:
    """The first line of ``text``, cut to ``max_chars`` (None: tables cut to fit)."""
    if not text:
        return None
    first = text.strip().splitlines()[0] if text.strip() else ""
    if max_chars is None or len(first) <= max_chars:
        return first
    return first[: max_chars - 1] + "…"


@app.command()
def stats(
    ctx: typer.Context, name: NameArg, output: OutputOpt = None, project: ProjectOpt = None
) -> None:
    """Show the CPU and memory each instance of a node uses now."""
    state = cli_state(ctx, output=output, project=project)
    measured = state.client().stats(name)
    if state.is_json:
        print_json({"instances": measured})
        return
    print_table(
        ("INSTANCE", "STATUS", "CPU %", "MEMORY MiB"),
        (
            (
                s.id,
                s.status,
                "-" if s.cpu_percent is None else f"{s.cpu_percent:.1f}",
                "-" if s.memory_bytes is None else f"{s.memory_bytes / 2**20:.1f}",
            )
            for s in measured
        ),
    )


app.command()(top)
