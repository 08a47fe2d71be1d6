"""`pier token ...`: bearer tokens with a role in the project; a value is shown once."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from pier.cli.context import OutputOpt, ProjectOpt, cli_state
from pier.cli.member import RoleOpt
from pier.cli.output import print_json, print_line, print_table

app = typer.Typer(no_args_is_help=True, help="Tokens: bearer tokens with a role in a project.")
DURATION = re.compile(r"([1-9][0-9]*)([smhd])")
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, option: str) -> int:
    """'30d', '12h', '90m', '45s' -> seconds; anything else names ``option``."""
    match = DURATION.fullmatch(text.strip())
    if match is None:
        raise typer.BadParameter(
            f"{text!r} is not a duration such as 30d, 12h, 90m or 45s", param_hint=option
        )
    return int(match[1]) * UNIT_S[match[2]]


@app.command()
def create(
    ctx: typer.Context,
    role: RoleOpt,
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="Lifetime: 30d, 12h, 90m, 45s. Default: never expires."),
    ] = None,
    principal: Annotated[
        str | None,
        typer.Option(
            "--for", help="The user or service account it belongs to (its role narrows it)."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="A label for `token list`.")] = None,
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Create a token with a role in the project and print it: it is shown this once."""
    expires_in_s = parse_duration(expires, "--expires") if expires is not None else None
    state = cli_state(ctx, output=output, project=project)
    created = state.client().create_token(
        role, name=name, principal=principal, expires_in_s=expires_in_s
    )
    if state.is_json:
        print_json(created)
        return
    until = created.expires_at.isoformat() if created.expires_at else "never"
    print_line(f"token {created.id} ({created.role} in {created.project}, expires {until}):")
    typer.echo(created.token)
    print_line("it is shown only now; pass it as --token or PIER_TOKEN")


@app.command("list")
def list_tokens(ctx: typer.Context, output: OutputOpt = None, project: ProjectOpt = None) -> None:
    """List the project's tokens (never their values)."""
    state = cli_state(ctx, output=output, project=project)
    tokens = state.client().list_tokens()
    if state.is_json:
        print_json({"tokens": tokens})
        return
    print_table(
        ("ID", "NAME", "ROLE", "FOR", "EXPIRES", "CREATED"),
        (
            (t.id, t.name, t.role, t.principal or "-",
             t.expires_at.isoformat() if t.expires_at else "never", t.created_at.isoformat())
            for t in tokens
        ),
    )  # fmt: skip


@app.command()
def revoke(
    ctx: typer.Context,
    token_id: Annotated[int, typer.Argument(help="The token's id (`pier token list`).")],
    project: ProjectOpt = None,
) -> None:
    """Revoke a token: the API refuses it at once, the gateway within seconds."""
    state = cli_state(ctx, project=project)
    state.client().revoke_token(token_id)
    print_line(f"token {token_id} revoked")
