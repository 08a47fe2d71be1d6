"""`pier project ...`: projects and what they may use."""

from __future__ import annotations

import typer

from pier.cli import limits

app = typer.Typer(no_args_is_help=True, help="Projects: allowed configurations and quotas.")
app.add_typer(limits.app, name="limits")
