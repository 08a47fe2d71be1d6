"""`pier project limits ...`: a project's allowed configurations and quotas."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

import typer

from pier.cli.context import OutputOpt, ProjectOpt, cli_state
from pier.cli.output import print_json, print_table
from pier.domain.configurations import format_bytes
from pier.domain.quotas import ProjectLimitsView

app = typer.Typer(no_args_is_help=True, help="Allowed configurations and quotas of a project.")

NO_LIMIT: Final = ("none", "any", "")
_SIZE: Final = re.compile(r"^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)?$", re.IGNORECASE)
_UNITS: Final = {"b": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_cap(value: str, *, flag: str, size: bool = False) -> int | None:
    """A cap given on the command line: a count, a size (64GiB), or none (no limit)."""
    if value.strip().lower() in NO_LIMIT:
        return None
    match = _SIZE.match(value.strip()) if size else re.match(r"^\d+$", value.strip())
    if match is None:
        what = "a size such as 64GiB" if size else "a whole number"
        raise typer.BadParameter(f"{value!r} is not {what} or 'none'", param_hint=flag)
    if not size:
        return int(value)
    return int(float(match[1]) * _UNITS[(match[2] or "b").lower()])


@app.command("get")
def get_limits(ctx: typer.Context, output: OutputOpt = None, project: ProjectOpt = None) -> None:
    """The project's allowed configurations and quotas, and what its nodes use."""
    state = cli_state(ctx, output=output, project=project)
    show(state.client().project_limits(), as_json=state.is_json)


@app.command("set")
def set_limits(
    ctx: typer.Context,
    configurations: Annotated[
        str | None,
        typer.Option(
            "--configurations",
            metavar="NAME,...|any",
            help="Configurations the project's nodes may use.",
            show_default=False,
        ),
    ] = None,
    max_instances: Annotated[
        str | None, typer.Option("--max-instances", help="Instances.", metavar="N|none")
    ] = None,
    max_vcpus: Annotated[
        str | None, typer.Option("--max-vcpus", help="vCPUs.", metavar="N|none")
    ] = None,
    max_memory: Annotated[
        str | None, typer.Option("--max-memory", help="Memory, e.g. 64GiB.", metavar="SIZE|none")
    ] = None,
    max_gpus: Annotated[
        str | None, typer.Option("--max-gpus", help="GPUs.", metavar="N|none")
    ] = None,
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Change the options given (the rest stay); 'none' or 'any' removes a limit."""
    state = cli_state(ctx, output=output, project=project)
    client = state.client()
    limits: dict[str, Any] = client.project_limits().limits.model_dump()
    if configurations is not None:
        names = [n.strip() for n in configurations.split(",") if n.strip()]
        limits["configurations"] = None if configurations.strip().lower() in NO_LIMIT else names
    for field, flag, value, size in (
        ("max_instances", "--max-instances", max_instances, False),
        ("max_vcpus", "--max-vcpus", max_vcpus, False),
        ("max_memory_bytes", "--max-memory", max_memory, True),
        ("max_gpus", "--max-gpus", max_gpus, False),
    ):
        if value is not None:
            limits[field] = parse_cap(value, flag=flag, size=size)
    show(client.set_project_limits(limits), as_json=state.is_json)


@app.command("clear")
def clear_limits(ctx: typer.Context, output: OutputOpt = None, project: ProjectOpt = None) -> None:
    """Remove every limit of the project."""
    state = cli_state(ctx, output=output, project=project)
    show(state.client().set_project_limits({}), as_json=state.is_json)


def show(view: ProjectLimitsView, *, as_json: bool) -> None:
    if as_json:
        print_json(view)
        return
    limits, usage = view.limits, view.usage
    allowed = ", ".join(limits.configurations) if limits.configurations is not None else "any"
    memory_cap = limits.max_memory_bytes

    def cap(value: int | None) -> str:
        return "no limit" if value is None else str(value)

    print_table(
        ("LIMIT", "USED", "QUOTA"),
        [
            ("configurations", "-", allowed),
            ("instances", usage.instances, cap(limits.max_instances)),
            ("vcpus", usage.vcpus, cap(limits.max_vcpus)),
            ("memory", format_bytes(usage.memory_bytes),
             "no limit" if memory_cap is None else format_bytes(memory_cap)),
            ("gpus", usage.gpus, cap(limits.max_gpus)),
        ],
    )  # fmt: skip
