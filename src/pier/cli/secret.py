"""`pier secret ...`: project secrets such as registry credentials; values never shown."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from pier.cli.context import OutputOpt, ProjectOpt, cli_state
from pier.cli.output import print_json, print_line, print_table

app = typer.Typer(no_args_is_help=True, help="Secrets: registry credentials and other values.")


@app.command("set")
def set_secret(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Secret name.", show_default=False)],
    username: Annotated[
        str | None, typer.Option("--username", help="Registry user name.", show_default=False)
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    value: Annotated[
        list[str] | None,
        typer.Option("--value", metavar="KEY=VALUE", help="Any key and value; repeat for more."),
    ] = None,
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Create or replace a secret; use it with `pier node create --registry-secret NAME`."""
    data: dict[str, str] = {}
    for item in value or []:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--value")
        data[key] = val
    if username is not None:
        data["username"] = username
    if password_stdin:
        data["password"] = sys.stdin.read().rstrip("\n")
    if not data:
        ctx.fail("give --username/--password-stdin or --value KEY=VALUE")
    state = cli_state(ctx, output=output, project=project)
    result = state.client().put_secret(name, data)
    if state.is_json:
        print_json(result)
    else:
        verb = "created" if result.created else "replaced"
        print_line(f"secret [bold]{name}[/] {verb} (keys: {', '.join(result.keys)})")


@app.command("list")
def list_secrets(ctx: typer.Context, output: OutputOpt = None, project: ProjectOpt = None) -> None:
    """List the project's secrets by name and keys (never the values)."""
    state = cli_state(ctx, output=output, project=project)
    secrets = state.client().list_secrets()
    if state.is_json:
        print_json({"secrets": secrets})
        return
    print_table(
        ("NAME", "KEYS", "UPDATED"),
        ((s.name, ", ".join(s.keys), s.updated_at.isoformat()) for s in secrets),
    )


@app.command()
def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Secret name.", show_default=False)],
    project: ProjectOpt = None,
) -> None:
    """Delete a secret."""
    state = cli_state(ctx, project=project)
    state.client().delete_secret(name)
    print_line(f"secret [bold]{name}[/] deleted")


@app.command("rotate-key")
def rotate_key(ctx: typer.Context, output: OutputOpt = None) -> None:
    """Seal every secret value again with a new key (<data dir>/secrets.key), dropping the old."""
    state = cli_state(ctx, output=output)
    result = state.client().rotate_secrets_key()
    if state.is_json:
        print_json(result)
    else:
        print_line(f"{result.sealed} values sealed again: {result.message}")
