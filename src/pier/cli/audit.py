"""`pier audit ...`: who changed what, when, from where, and what came of it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import typer

from pier.cli.context import OutputOpt, cli_state
from pier.cli.output import print_json, print_table

app = typer.Typer(no_args_is_help=True, help="The audit log: every change asked of the API.")

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_AGO: Final = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def parse_since(value: str | None, *, now: datetime) -> datetime | None:
    """``1h``, ``30m``, ``2d``, ``90s`` before ``now``, or an ISO 8601 time."""
    if value is None:
        return None
    if match := _AGO.match(value.strip()):
        return now - timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is neither a duration (1h, 30m, 2d) nor an ISO 8601 time",
            param_hint="--since",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


ProjectFilter = Annotated[
    str | None,
    typer.Option("--project", "-p", help="Only changes in this project.", show_default=False),
]
SinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="Only changes since: 1h, 30m, 2d or a time.", show_default=False),
]
ActorOpt = Annotated[
    str | None, typer.Option("--actor", help="Only changes by this caller.", show_default=False)
]
ActionOpt = Annotated[
    str | None,
    typer.Option("--action", help="Only this operation (create_node...).", show_default=False),
]
OutcomeOpt = Annotated[
    str | None, typer.Option("--outcome", help="ok, refused or failed.", show_default=False)
]


def _filters(**given: Any) -> dict[str, Any]:
    given["since"] = parse_since(given["since"], now=datetime.now(UTC))
    return given


@app.command("list")
def list_audit(
    ctx: typer.Context,
    project: ProjectFilter = None,
    since: SinceOpt = None,
    actor: ActorOpt = None,
    action: ActionOpt = None,
    outcome: OutcomeOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="Newest entries to show.")] = 50,
    output: OutputOpt = None,
) -> None:
    """The newest changes, newest first (all projects unless --project)."""
    state = cli_state(ctx, output=output)
    filters = _filters(project=project, since=since, actor=actor, action=action, outcome=outcome)
    page = state.client().audit(**filters, limit=limit)
    if state.is_json:
        print_json(page)
        return
    print_table(
        ("TIME", "ACTOR", "PROJECT", "ACTION", "TARGET", "OUTCOME", "STATUS", "ERROR", "CLIENT"),
        (
            (e.time.isoformat(timespec="seconds"), e.actor, e.project, e.action, e.target,
             e.outcome, e.status, e.error, e.client)
            for e in page.entries
        ),
    )  # fmt: skip


@app.command("export")
def export_audit(
    ctx: typer.Context,
    project: ProjectFilter = None,
    since: SinceOpt = None,
    actor: ActorOpt = None,
    action: ActionOpt = None,
    outcome: OutcomeOpt = None,
) -> None:
    """Every matching entry as JSON lines (one object a line), newest first."""
    state = cli_state(ctx)
    filters = _filters(project=project, since=since, actor=actor, action=action, outcome=outcome)
    for entry in state.client().iter_audit(**filters, limit=1000):
        typer.echo(json.dumps(entry.model_dump(mode="json"), ensure_ascii=False))
