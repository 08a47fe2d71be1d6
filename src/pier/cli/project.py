"""`pier project ...`: create, list, show and delete projects."""

from __future__ import annotations

from typing import Annotated

import typer

from pier.cli import limits
from pier.cli.context import OutputOpt, cli_state
from pier.cli.output import print_fields, print_json, print_line, print_table

app = typer.Typer(no_args_is_help=True, help="Projects: namespaces for nodes, models and members.")
app.add_typer(limits.app, name="limits")
NameArg = Annotated[str, typer.Argument(help="Project name.", show_default=False)]


@app.command()
def create(ctx: typer.Context, name: NameArg, output: OutputOpt = None) -> None:
    """Create a project (installation admin)."""
    state = cli_state(ctx, output=output)
    project = state.client().create_project(name)
    if state.is_json:
        print_json(project)
    else:
        print_line(f"project [bold]{project.name}[/] created")


@app.command("list")
def list_projects(ctx: typer.Context, output: OutputOpt = None) -> None:
    """List the projects your token has a role in."""
    state = cli_state(ctx, output=output)
    projects = state.client().list_projects()
    if state.is_json:
        print_json({"projects": projects})
        return
    print_table(
        ("NAME", "NODES", "ALIASES", "MODELS", "CREATED"),
        ((p.name, p.nodes, p.aliases, p.models, p.created_at.isoformat()) for p in projects),
    )


@app.command()
def get(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="Project name; default: --project.", show_default=False)
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Show a project, how much it holds, and its use against its quotas."""
    state = cli_state(ctx, output=output, project=name)
    client = state.client()
    project = client.get_project()
    if state.is_json:
        print_json(project)
        return
    print_fields(
        [
            ("name", project.name),
            ("nodes", project.nodes),
            ("aliases", project.aliases),
            ("models", project.models),
            ("created", project.created_at.isoformat()),
        ]
    )
    limits.show(client.project_limits(), as_json=False)


@app.command()
def delete(ctx: typer.Context, name: NameArg) -> None:
    """Delete an empty project with its secrets, members and tokens (installation admin);
    refused, naming them, while it has nodes, aliases or models."""
    cli_state(ctx).client().delete_project(name)
    print_line(f"project [bold]{name}[/] deleted")
