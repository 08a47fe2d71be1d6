"""How the CLI prints: rich tables for people, JSON for scripts, errors as one line on stderr.

A table is one line per row. On a terminal, ``table`` output fits its width: free text
(``Column(cut=True)``: messages, errors) is cut with "…" while ids, names, URLs and
numbers are never cut or wrapped, and columns marked ``wide`` are left out; ``wide``
output shows every column in full. Piped output is never cut or wrapped, so `grep` and
`awk` see whole rows.
"""

import contextlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import typer
from pydantic_core import to_jsonable_python
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from pier.domain.configurations import format_bytes

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)
PIPE_WIDTH = 1000


class OutputFormat(StrEnum):
    TABLE = "table"
    """Fits the terminal: free text is cut, some columns are only in ``wide``."""
    WIDE = "wide"
    """Every column, nothing cut."""
    JSON = "json"
    """The API's shape, for scripts."""


@dataclass(frozen=True, slots=True)
class Column:
    """A table column. ``cut``: free text, cut with … to fit a terminal (other values,
    such as ids and URLs, are never cut). ``wide``: shown only with ``--output wide``."""

    header: str
    cut: bool = False
    wide: bool = False


def print_json(data: Any) -> None:
    """Plain JSON on stdout (the API's shape: models as the server sends them): no
    colours, stable for pipes and `jq`."""
    typer.echo(json.dumps(to_jsonable_python(data), indent=2, ensure_ascii=False))


def print_table(
    columns: Sequence[str | Column], rows: Iterable[Sequence[object]], *, wide: bool = False
) -> None:
    """A borderless table on stdout, one line per row; None prints as '-'. ``wide``: every
    column, nothing cut (see the module docstring)."""
    specs = [column if isinstance(column, Column) else Column(column) for column in columns]
    shown = [i for i, column in enumerate(specs) if wide or not column.wide]
    table = Table(box=None, pad_edge=False, header_style="bold")
    for i in shown:
        table.add_column(Text(specs[i].header, no_wrap=True), no_wrap=not specs[i].cut)
    for row in rows:
        table.add_row(*(_text(row[i]) for i in shown))
    _console(fit=not wide).print(table)


def print_fields(fields: Iterable[tuple[str, object]]) -> None:
    """Label: value lines, one per field; long values wrap within their column."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in fields:
        table.add_row(label, escape(_cell(value)))
    _console(fit=True).print(table)


def print_line(message: str) -> None:
    """One line of information for people: stdout, markup allowed."""
    stdout.print(message)


def print_error(message: str) -> None:
    """`error: <message>` on stderr."""
    stderr.print(f"[bold red]error:[/] {escape(message)}")


@contextlib.contextmanager
def stopped_by_ctrl_c() -> Iterator[None]:
    """Ctrl-C ends a --follow quietly, with exit status 0 (not 'Aborted.' and status 1)."""
    try:
        yield
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def _console(*, fit: bool) -> Console:
    """stdout as wide as the terminal when ``fit`` and there is one; else as wide as the
    rows need, up to PIPE_WIDTH (a Console caps every print at its own width)."""
    if fit and stdout.is_terminal:
        return stdout
    return Console(highlight=False, soft_wrap=True, width=PIPE_WIDTH)


def _text(value: object) -> Text:
    """A cell on one line (rich only cuts the columns that may be cut, see print_table)."""
    return Text(_cell(value), no_wrap=True, overflow="ellipsis")


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


def age(timestamp: datetime | str | None, *, now: datetime | None = None) -> str:
    """A time (or an ISO string) as an age: '45s', '12m', '3h', '2d'; unparsable times
    unchanged."""
    if not timestamp:
        return "-"
    try:
        then = timestamp if isinstance(timestamp, datetime) else datetime.fromisoformat(timestamp)
    except ValueError:
        return str(timestamp)
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def clock(timestamp: datetime | str | None) -> str:
    """A time (or an ISO string) as local HH:MM:SS (events)."""
    if not timestamp:
        return "-"
    try:
        then = timestamp if isinstance(timestamp, datetime) else datetime.fromisoformat(timestamp)
    except ValueError:
        return str(timestamp)
    return then.astimezone().strftime("%H:%M:%S")
