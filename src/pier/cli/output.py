"""How the CLI prints: rich tables for people, JSON for scripts, errors as one line on stderr."""

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pier.domain.configurations import format_bytes

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)
PIPE_WIDTH = 1000


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def print_json(data: Any) -> None:
    """Plain JSON on stdout: no colours, stable for pipes and `jq`."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A borderless table on stdout; None prints as '-'."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(escape(_cell(value)) for value in row))
    stdout.print(table, width=_width())


def print_fields(fields: Iterable[tuple[str, object]]) -> None:
    """Label: value lines, one per field."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, value in fields:
        table.add_row(label, escape(_cell(value)))
    stdout.print(table, width=_width())


def print_line(message: str) -> None:
    """One line of information for people: stdout, markup allowed."""
    stdout.print(message)


def print_error(message: str) -> None:
    """`error: <message>` on stderr."""
    stderr.print(f"[bold red]error:[/] {escape(message)}")


def _width() -> int | None:
    """The terminal's width; piped output is not wrapped, so `grep` sees whole rows."""
    return None if stdout.is_terminal else PIPE_WIDTH


def _cell(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in value.items()) or "-"
    return str(value)


def human_bytes(size: int | None) -> str:
    """1536 -> '1.5 KiB'; None -> '-'. The same units as configurations are shown in."""
    return "-" if size is None else format_bytes(size)


def age(timestamp: str | None, *, now: datetime | None = None) -> str:
    """An ISO time as an age: '45s', '12m', '3h', '2d'; unparsable times unchanged."""
    if not timestamp:
        return "-"
    try:
        then = datetime.fromisoformat(timestamp)
    except ValueError:
        return timestamp
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def clock(timestamp: str | None) -> str:
    """An ISO time as local HH:MM:SS (events)."""
    if not timestamp:
        return "-"
    try:
        return datetime.fromisoformat(timestamp).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return timestamp
