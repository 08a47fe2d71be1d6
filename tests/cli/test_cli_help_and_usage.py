"""Every command explains itself in --help; wrong combinations are usage errors (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from pier.cli.main import app

runner = CliRunner()


def command_paths(command: Any = None, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and group of the CLI as its argv prefix, the root included."""
    command = command or typer.main.get_command(app)
    yield prefix
    ctx = typer.Context(command)
    for name in getattr(command, "list_commands", lambda ctx: [])(ctx):
        sub = command.get_command(ctx, name)
        if sub is not None:
            yield from command_paths(sub, (*prefix, name))


ALL_COMMANDS = sorted(command_paths())


def test_the_cli_has_the_documented_commands() -> None:
    for path in [
        ("model", "push"),
        ("model", "list"),
        ("node", "create"),
        ("node", "list"),
        ("node", "get"),
        ("node", "update"),
        ("node", "delete"),
        ("node", "instances"),
        ("node", "logs"),
        ("alias", "create"),
        ("alias", "set"),
        ("alias", "get"),
        ("alias", "list"),
        ("alias", "delete"),
        ("call",),
    ]:
        assert path in ALL_COMMANDS


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda path: " ".join(path) or "pier")
def test_help_of_every_command_works(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    root = typer.main.get_command(app)
    command: Any = root
    for name in path:
        command = command.get_command(typer.Context(command), name)
    first_line = (command.help or "").strip().splitlines()[0]
    assert first_line, f"pier {' '.join(path)} has no docstring"
    assert first_line.split()[0] in result.output


def test_python_dash_m_pier_runs_the_same_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pier", "node", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "create" in result.stdout and "instances" in result.stdout


def test_node_create_needs_a_model_or_an_image() -> None:
    result = runner.invoke(app, ["node", "create", "iris"])
    assert result.exit_code == 2
    assert "give --model MODEL[:VERSION], --image REF, or both" in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["node", "create", "web", "--image", "nginx", "--env", "NOVALUE"], "KEY=VALUE"),
        (["node", "create", "iris", "--model", "iris:latest"], "MODEL[:VERSION]"),
        (["node", "update", "iris"], "nothing to update"),
        (["call", "iris", "-H", "no-colon"], "KEY:VALUE"),
        (["alias", "create", "prod"], "--node"),
        (["alias", "create", "prod", "--node", "v1=ninety"], "NODE[=SHARE]"),
        (["alias", "create", "prod", "--node", "v1", "--mirror", "v2"], "NODE=PERCENT"),
        (["alias", "create", "prod", "--node", "v1", "--mirror", "v2=lots"], "--mirror"),
        (["alias", "create", "prod", "--node", "v1", "--route", "x-t:v2"], "HEADER=VALUE:NODE"),
        (["alias", "create", "prod", "--node", "v1", "--metadata", "owner"], "KEY=VALUE"),
        (["alias", "set", "prod"], "nothing to change"),
        (["alias", "set", "prod", "--mirror", "v2=5", "--no-mirrors"], "not both"),
    ],
)
def test_bad_option_values_are_usage_errors(args: list[str], says: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert says in result.output


def test_model_push_asks_for_a_format_it_cannot_tell(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"?")
    result = runner.invoke(app, ["model", "push", str(path), "--name", "thing"])
    assert result.exit_code == 2
    assert "--format" in result.output


def test_model_push_of_a_pickle_needs_trust(tmp_path: Path) -> None:
    path = tmp_path / "tree.joblib"
    path.write_bytes(b"pickle")
    result = runner.invoke(app, ["model", "push", str(path), "--name", "tree"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "--trust" in result.stderr and "runs code" in result.stderr


def option_line(help_text: str, option: str) -> str:
    [line] = [line for line in help_text.splitlines() if f"│ {option} " in line]
    return line


def test_node_create_help_shows_defaults_and_examples() -> None:
    result = runner.invoke(app, ["node", "create", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "[default: 1]" in option_line(result.stdout, "--min")
    assert "[default: as many as --min]" in option_line(result.stdout, "--max")
    assert "[default: 60]" in option_line(result.stdout, "--timeout")
    assert "pier node create iris --model iris" in result.stdout  # a model node
    assert "pier node create web --image " in result.stdout  # an image node


@pytest.mark.parametrize("path", [(), ("node", "create"), ("node", "delete"), ("up",)])
def test_flags_show_no_type_in_help(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout
    assert "--help" in result.stdout
