"""`pier member ...`: who has which role in the project."""

from __future__ import annotations

from typing import Annotated

import typer

from pier.cli.context import OutputOpt, ProjectOpt, cli_state
from pier.cli.output import print_json, print_line, print_table
from pier.domain.roles import Role

app = typer.Typer(no_args_is_help=True, help="Members: users and service accounts with a role.")
PrincipalArg = Annotated[
    str, typer.Argument(help="User or service account name.", show_default=False)
]
RoleOpt = Annotated[
    Role,
    typer.Option(
        "--role", help="viewer, caller, editor or admin (see `pier --help`).", show_default=False
    ),
]


@app.command()
def add(
    ctx: typer.Context,
    principal: PrincipalArg,
    role: RoleOpt,
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Give a user (made on first use) or a service account a role in the project; adding
    an existing member changes their role."""
    state = cli_state(ctx, output=output, project=project)
    member = state.client().add_member(principal, role)
    if state.is_json:
        print_json(member)
    else:
        print_line(f"[bold]{member.principal}[/] is {member.role} in project {state.project}")


@app.command("list")
def list_members(ctx: typer.Context, output: OutputOpt = None, project: ProjectOpt = None) -> None:
    """List the project's members and their roles."""
    state = cli_state(ctx, output=output, project=project)
    members = state.client().list_members()
    if state.is_json:
        print_json({"members": members})
        return
    print_table(("NAME", "KIND", "ROLE"), ((m.principal, m.kind, m.role) for m in members))


@app.command()
def remove(ctx: typer.Context, principal: PrincipalArg, project: ProjectOpt = None) -> None:
    """Take a member's role away: their tokens for the project stop working."""
    state = cli_state(ctx, project=project)
    state.client().remove_member(principal)
    print_line(f"[bold]{principal}[/] removed from project {state.project}")
