"""The global options every command shares, and the SDK client built from them on first use.

The client is built lazily so that `--help` and `pier up` never need a token or a server.
"""

from dataclasses import dataclass, field
from typing import Annotated

import typer

from pier.cli.output import OutputFormat
from pier.client import DEFAULT_PROJECT, Client


@dataclass
class CliState:
    """Global options of one `pier` invocation."""

    project: str = DEFAULT_PROJECT
    url: str | None = None
    token: str | None = None
    output: OutputFormat = OutputFormat.TABLE
    _client: Client | None = field(default=None, repr=False)

    @property
    def is_json(self) -> bool:
        return self.output is OutputFormat.JSON

    @property
    def is_wide(self) -> bool:
        """Tables with every column, nothing cut (``--output wide``)."""
        return self.output is OutputFormat.WIDE

    def client(self, *, gateway_url: str | None = None) -> Client:
        """The SDK client for these options (one per invocation)."""
        if self._client is None:
            self._client = Client(
                self.url, self.token, self.project, gateway_url=gateway_url or None
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


OutputOpt = Annotated[
    OutputFormat | None,
    typer.Option(
        "--output", "-o", help="table, wide or json; also a global option.", show_default=False
    ),
]
ProjectOpt = Annotated[
    str | None,
    typer.Option("--project", "-p", help="Project; also a global option.", show_default=False),
]
"""The global options that commands accept after their name too: `pier node list -o json`."""


def cli_state(
    ctx: typer.Context, *, output: OutputFormat | None = None, project: str | None = None
) -> CliState:
    """The invocation's CliState, with a command's own --output/--project applied."""
    state = ctx.find_object(CliState)
    if state is None:  # a sub-app invoked on its own, as in tests
        state = ctx.ensure_object(CliState)
        ctx.call_on_close(state.close)
    if output is not None:
        state.output = output
    if project is not None:
        state.project = project
    return state
