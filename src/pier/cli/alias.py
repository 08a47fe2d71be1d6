"""`pier alias ...`: published endpoints over weighted nodes; re-point them without callers
noticing.

A value the server refuses is told with the flag that set it (``--node: the shares sum
to 60 (a=30 + b=30), not 100``), through ``FIELD_FLAGS``.
"""

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Final

import typer

from pier.cli.context import OutputOpt, ProjectOpt, cli_state
from pier.cli.output import Column, print_fields, print_json, print_line, print_table
from pier.cli.rollout import rollout_fields
from pier.domain.errors import InvalidSpec
from pier.domain.views import AliasView, MirrorFiguresView

EXAMPLES = """\b
Examples:
  pier alias create prod --node iris-v1=90 --node iris-v2=10 --metadata owner=ml
  pier alias set prod --node iris-v2            # all traffic to iris-v2 (share 100)
  pier alias set prod --mirror iris-v3=10       # copy 10% of requests to iris-v3
  pier alias set prod --route x-tester=yes:iris-v3 --sticky-header x-session
  pier call alias/prod /v2/models/iris/infer --data @request.json
  pier alias rollout prod --to iris-v2 --steps 10,50,100 --bake 60s --wait
"""

app = typer.Typer(
    no_args_is_help=True,
    help="Aliases: stable endpoints over weighted nodes; roll them out step by step.",
    epilog=EXAMPLES,
)

FIELD_FLAGS: Final = {
    "name": "NAME",
    "nodes": "--node",
    "mirrors": "--mirror",
    "sticky_header": "--sticky-header",
    "header_routes": "--route",
    "metadata": "--metadata",
    "access": "--public/--private",
}
"""AliasSpec field (the first part of its dotted path) -> the flag that sets it."""
ROUTE: Final = re.compile(r"(?P<header>[^=]+)=(?P<value>.*):(?P<node>[^:]+)")

NameArg = Annotated[str, typer.Argument(help="Alias name.", show_default=False)]
NodeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--node",
        metavar="NODE[=SHARE]",
        help="A node and its percent of the traffic; repeat for more. The shares sum to "
        "100; one node may leave its share out and takes the rest (alone: 100).",
        show_default=False,
    ),
]
MetadataOpt = Annotated[
    list[str] | None,
    typer.Option("--metadata", metavar="KEY=VALUE", help="A label; repeat for more."),
]
AccessOpt = Annotated[
    bool | None,
    typer.Option(
        "--public/--private",
        help="public: anyone may call the alias; private (the default): callers need a token.",
        show_default=False,
    ),
]
MirrorOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--mirror",
        metavar="NODE=PERCENT",
        help="Copy PERCENT of the requests to NODE (answers discarded, measured); repeat for more.",
        show_default=False,
    ),
]
StickyOpt = Annotated[
    str | None,
    typer.Option(
        "--sticky-header",
        metavar="HEADER",
        help="Callers with the same value of HEADER keep their instance ('' to stop).",
        show_default=False,
    ),
]
RouteOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--route",
        metavar="HEADER=VALUE:NODE",
        help="Requests with HEADER: VALUE go to NODE whatever the shares; repeat for more.",
        show_default=False,
    ),
]


@app.command(epilog=EXAMPLES)
def create(
    ctx: typer.Context,
    name: NameArg,
    node: NodeOpt = None,
    metadata: MetadataOpt = None,
    public: AccessOpt = None,
    mirror: MirrorOpt = None,
    sticky_header: StickyOpt = None,
    route: RouteOpt = None,
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Create an alias over nodes of the project, each with a share of the traffic."""
    if not node:
        raise typer.BadParameter("give at least one --node NODE[=SHARE]", param_hint="--node")
    fields = spec_fields(node, metadata, public, mirror, sticky_header, route)
    state = cli_state(ctx, output=output, project=project)
    with flags_in_errors():
        alias = state.client().create_alias(name, fields)
    _print_written(alias, "created", as_json=state.is_json)


@app.command("set", epilog=EXAMPLES)
def set_alias(
    ctx: typer.Context,
    name: NameArg,
    node: NodeOpt = None,
    metadata: MetadataOpt = None,
    public: AccessOpt = None,
    mirror: MirrorOpt = None,
    sticky_header: StickyOpt = None,
    route: RouteOpt = None,
    no_mirrors: Annotated[
        bool, typer.Option("--no-mirrors", help="Stop every mirror of the alias.")
    ] = False,
    no_routes: Annotated[
        bool, typer.Option("--no-routes", help="Drop every header route of the alias.")
    ] = False,
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Change an alias; every gateway worker switches to the change at once.

    What a flag gives replaces that part of the alias (all of --node, all of --mirror, all
    of --route); --metadata adds keys; what no flag gives stays as it is."""
    fields = spec_fields(node, metadata, public, mirror, sticky_header, route)
    for flag, given, field, other in (
        ("--no-mirrors", no_mirrors, "mirrors", "--mirror"),
        ("--no-routes", no_routes, "header_routes", "--route"),
    ):
        if given and field in fields:
            raise typer.BadParameter(f"give {flag} or {other}, not both", param_hint=flag)
        if given:
            fields[field] = None  # a merge patch's null: back to none
    if not fields:
        ctx.fail("nothing to change: give --node, --mirror, --route, --metadata, ...")
    state = cli_state(ctx, output=output, project=project)
    with flags_in_errors():
        alias = state.client().set_alias(name, fields)
    _print_written(alias, "set", as_json=state.is_json)


@app.command("list")
def list_aliases(ctx: typer.Context, output: OutputOpt = None, project: ProjectOpt = None) -> None:
    """List the aliases of the project with their nodes and shares."""
    state = cli_state(ctx, output=output, project=project)
    aliases = state.client().list_aliases()
    if state.is_json:
        print_json({"aliases": aliases})
        return
    print_table(
        ("NAME", "NODES", "ROUTED", "ACCESS", Column("METADATA", wide=True)),
        (
            (a.name, _shares(a), "yes" if a.routed else "no", a.spec.access, a.spec.metadata)
            for a in aliases
        ),
        wide=state.is_wide,
    )


@app.command()
def get(
    ctx: typer.Context, name: NameArg, output: OutputOpt = None, project: ProjectOpt = None
) -> None:
    """Show an alias: per node its share, the share it takes now and why not all of it."""
    state = cli_state(ctx, output=output, project=project)
    alias = state.client().get_alias(name)
    if state.is_json:
        print_json(alias)
        return
    spec = alias.spec
    print_fields(
        [
            ("name", alias.name),
            ("project", alias.project),
            ("access", spec.access),
            ("routed", "yes" if alias.routed else "no: the gateway has not got the change yet"),
            ("mirrors", [f"{m.node}={m.percent:g}%" for m in spec.mirrors]),
            ("sticky header", spec.sticky_header),
            ("routes", [f"{r.header}={r.value} -> {r.node}" for r in spec.header_routes]),
            ("metadata", spec.metadata),
            ("created", alias.created_at.isoformat()),
            ("updated", alias.updated_at.isoformat()),
        ]
    )
    print_line("")
    print_table(
        ("NODE", "SHARE", "TAKES NOW", "STATUS", Column("WHY NOT", cut=True)),
        (
            (n.node, f"{n.share}%", f"{n.effective_share:g}%", n.status, n.why_not_ready)
            for n in alias.nodes
        ),
    )
    if alias.mirror_figures:
        print_line("")
        print_table(
            ("MIRROR", "MIRRORED", "DROPPED", "ERRORS", "P50", "P95", "EQUAL", "MAX DIFF"),
            (_mirror_row(m) for m in alias.mirror_figures),
        )
    if alias.rollout is not None:
        print_line("")
        print_fields(rollout_fields(alias.rollout))


def _mirror_row(figures: MirrorFiguresView) -> tuple[object, ...]:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} ms"

    share = figures.equal_share
    equal = "-" if share is None else f"{share:.1%} of {figures.compared}"
    return (
        figures.node, figures.mirrored, figures.dropped, figures.errors,
        ms(figures.p50_ms), ms(figures.p95_ms), equal, f"{figures.max_abs_difference:g}",
    )  # fmt: skip


@app.command()
def delete(ctx: typer.Context, name: NameArg, project: ProjectOpt = None) -> None:
    """Delete an alias; its nodes stay."""
    state = cli_state(ctx, project=project)
    state.client().delete_alias(name)
    print_line(f"alias [bold]{name}[/] deleted")


def spec_fields(
    nodes: Sequence[str] | None,
    metadata: Sequence[str] | None,
    public: bool | None,
    mirrors: Sequence[str] | None,
    sticky_header: str | None,
    routes: Sequence[str] | None,
) -> dict[str, Any]:
    """The spec fields the flags give (only those given)."""
    fields: dict[str, Any] = {}
    if nodes:
        fields["nodes"] = [parse_share(item) for item in nodes]
    if metadata:
        fields["metadata"] = dict(_pair(item, "=", "--metadata", "KEY=VALUE") for item in metadata)
    if public is not None:
        fields["access"] = "public" if public else "private"
    if mirrors:
        fields["mirrors"] = [parse_mirror(item) for item in mirrors]
    if sticky_header is not None:
        fields["sticky_header"] = sticky_header or None
    if routes:
        fields["header_routes"] = [parse_route(item) for item in routes]
    return fields


def parse_share(item: str) -> dict[str, Any]:
    """'iris-v1=90' -> {"node": "iris-v1", "share": 90}; 'iris-v1' -> {"node": "iris-v1"}."""
    node, sep, share = item.partition("=")
    if not sep:
        return {"node": node}
    if not share.strip().isdigit() or not node:
        raise typer.BadParameter(
            f"{item!r} is not NODE[=SHARE] with SHARE a whole percent", param_hint="--node"
        )
    return {"node": node, "share": int(share)}


def parse_mirror(item: str) -> dict[str, Any]:
    """'iris-v3=10' -> {"node": "iris-v3", "percent": 10.0}."""
    node, percent = _pair(item, "=", "--mirror", "NODE=PERCENT")
    try:
        return {"node": node, "percent": float(percent.removesuffix("%"))}
    except ValueError:
        raise typer.BadParameter(
            f"{item!r}: PERCENT is not a number", param_hint="--mirror"
        ) from None


def parse_route(item: str) -> dict[str, str]:
    """'x-tester=yes:iris-v3' -> {"header": "x-tester", "value": "yes", "node": "iris-v3"}."""
    match = ROUTE.fullmatch(item)
    if match is None:
        raise typer.BadParameter(f"{item!r} is not HEADER=VALUE:NODE", param_hint="--route")
    return {"header": match["header"], "value": match["value"], "node": match["node"]}


def _pair(item: str, sep: str, flag: str, usage: str) -> tuple[str, str]:
    key, found, value = item.partition(sep)
    if not found or not key:
        raise typer.BadParameter(f"{item!r} is not {usage}", param_hint=flag)
    return key, value


@contextlib.contextmanager
def flags_in_errors() -> Iterator[None]:
    """An InvalidSpec about a spec field is told with the flag that sets it."""
    try:
        yield
    except InvalidSpec as exc:
        top = exc.field.split(".")[0]
        if top not in FIELD_FLAGS:
            raise
        flag = FIELD_FLAGS[top]
        message = f"{flag}: {exc.message.removeprefix(f'{exc.field}: ')}"
        raise InvalidSpec.from_wire(message, field=exc.field) from None


def _shares(alias: AliasView) -> str:
    return ", ".join(
        f"{n.node}={n.share}" + ("" if n.ready else " (not ready)") for n in alias.nodes
    )


def _print_written(alias: AliasView, verb: str, *, as_json: bool) -> None:
    if as_json:
        print_json(alias)
        return
    print_line(f"alias [bold]{alias.name}[/] {verb}: {_shares(alias)}")
    for node in alias.nodes:
        if node.why_not_ready is not None:
            print_line(f"  {node.node} takes no traffic yet: {node.why_not_ready}")
