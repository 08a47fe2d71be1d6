"""The `pier` command line: global options, one sub-app per noun, one error line per failure.

`pier up` lives in `cli/up.py` and is imported only when asked for (or listed in --help):
it pulls in the whole server, which no other command needs.
"""

import importlib.util
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from pier import __version__
from pier.cli import (
    alias,
    audit,
    call,
    configuration,
    gateway,
    member,
    model,
    node,
    project,
    rollout,
    secret,
    service_account,
    token,
)
from pier.cli.context import CliState, OutputOpt, cli_state
from pier.cli.output import OutputFormat, print_error, print_fields, print_json
from pier.client import DEFAULT_PROJECT
from pier.domain.errors import PierError


class PierGroup(TyperGroup):
    """The top-level group: adds `pier up` lazily and turns a PierError into one line."""

    _up: Any = None

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        hide_flag_types(self, ctx)  # before parsing: --help prints while it parses
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        names = super().list_commands(ctx)
        if "up" not in names and importlib.util.find_spec("pier.cli.up") is not None:
            names.insert(0, "up")
        return names

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:  # type: ignore[override]
        if cmd_name == "up" and cmd_name not in self.commands:
            up = _up_command()
            if up is not None:
                hide_flag_types(up, ctx)
            return up
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except PierError as exc:
            print_error(exc.message)
            raise typer.Exit(1) from None


def hide_flag_types(command: Any, ctx: typer.Context) -> None:
    """Drop the `<bool>` Typer shows next to every flag (`--wait`, `--help`) in --help, in
    ``command`` and all its subcommands: a flag takes no value, so it has no type to show."""
    flags = [p for p in command.params if getattr(p, "is_flag", False)]
    help_option = command.get_help_option(ctx)  # made once per command, then reused
    for option in [*flags, *([help_option] if help_option is not None else [])]:
        option.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        hide_flag_types(sub, ctx)


def _up_command() -> Any:
    """`pier up` as a command, or None while cli/up.py does not exist."""
    if PierGroup._up is None:
        if importlib.util.find_spec("pier.cli.up") is None:
            return None
        from pier.cli import up

        single = typer.Typer(add_completion=False)
        single.command("up")(up.up)
        PierGroup._up = typer.main.get_command(single)
    return PierGroup._up


app = typer.Typer(
    cls=PierGroup,
    name="pier",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(model.app, name="model")
app.add_typer(node.app, name="node")
app.add_typer(alias.app, name="alias")
app.add_typer(configuration.app, name="configuration")
app.add_typer(secret.app, name="secret")
app.add_typer(audit.app, name="audit")
app.add_typer(project.app, name="project")
app.add_typer(member.app, name="member")
app.add_typer(service_account.app, name="service-account")
app.add_typer(token.app, name="token")
app.command("call")(call.call)
app.command("gateway")(gateway.gateway)
alias.app.command("rollout")(rollout.rollout)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"pier {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    project: Annotated[
        str, typer.Option("--project", "-p", envvar="PIER_PROJECT", help="Project to work in.")
    ] = DEFAULT_PROJECT,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="PIER_URL",
            help="Control-plane URL. Default: http://127.0.0.1:8080.",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="PIER_TOKEN",
            help="Bearer token. Default: <data dir>/admin.token, written by `pier up`.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        OutputFormat,
        typer.Option(
            "--output",
            "-o",
            help="table: fits the terminal; wide: every column, nothing cut; json: for scripts.",
        ),
    ] = OutputFormat.TABLE,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print pier's version."
        ),
    ] = False,
) -> None:
    """pier: deploy models and container images as autoscaled, monitored nodes.

    Roles per project: viewer (read, no secret values), caller (call
    private nodes and aliases through the gateway only), editor (models,
    nodes, secrets), admin (members, service accounts, tokens). The token
    `pier up` writes is the installation's admin."""
    state = CliState(project=project, url=url, token=token, output=output)
    ctx.obj = state
    ctx.call_on_close(state.close)


@app.command()
def info(ctx: typer.Context, output: OutputOpt = None) -> None:
    """Show the control plane's version, gateway URL and runtimes."""
    state = cli_state(ctx, output=output)
    client = state.client()
    data = client.info()
    if state.is_json:
        print_json(data)
        return
    print_fields(
        [
            ("url", client.url),
            ("project", state.project),
            ("version", data.version),
            ("gateway", data.gateway_url),
            ("runtimes", data.runtimes),
        ]
    )


def main() -> None:
    """Entry point of the `pier` console script."""
    app(prog_name="pier")
