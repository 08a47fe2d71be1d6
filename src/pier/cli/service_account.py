"""`pier service-account ...`: principals for programs, given tokens with `pier token`."""

from __future__ import annotations

from typing import Annotated

import typer

from pier.cli.context import OutputOpt, ProjectOpt, cli_state
from pier.cli.member import RoleOpt
from pier.cli.output import print_json, print_line, print_table

app = typer.Typer(no_args_is_help=True, help="Service accounts: principals for programs.")
NameArg = Annotated[str, typer.Argument(help="Service account name.", show_default=False)]


@app.command()
def create(
    ctx: typer.Context,
    name: NameArg,
    role: RoleOpt,
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Create a service account of the project with a role in it; then
    `pier token create --for NAME --role ROLE` gives it a token."""
    state = cli_state(ctx, output=output, project=project)
    account = state.client().create_service_account(name, role)
    if state.is_json:
        print_json(account)
    else:
        print_line(f"service account [bold]{account.name}[/] created ({account.role})")


@app.command("list")
def list_accounts(ctx: typer.Context, output: OutputOpt = None, project: ProjectOpt = None) -> None:
    """List the project's service accounts."""
    state = cli_state(ctx, output=output, project=project)
    accounts = state.client().list_service_accounts()
    if state.is_json:
        print_json({"service_accounts": accounts})
        return
    print_table(
        ("NAME", "ROLE", "CREATED"), ((a.name, a.role, a.created_at.isoformat()) for a in accounts)
    )


@app.command()
def delete(ctx: typer.Context, name: NameArg, project: ProjectOpt = None) -> None:
    """Delete a service account with its tokens."""
    state = cli_state(ctx, project=project)
    state.client().delete_service_account(name)
    print_line(f"service account [bold]{name}[/] deleted")
