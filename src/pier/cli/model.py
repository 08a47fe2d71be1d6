"""`pier model ...`: push model artifacts and list their versions."""

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from pier.cli.call import read_body
from pier.cli.context import OutputOpt, ProjectOpt, cli_state
from pier.cli.output import (
    Column,
    age,
    human_bytes,
    print_json,
    print_line,
    print_table,
    stderr,
)
from pier.client import FORMATS, Client, detect_format
from pier.domain.errors import BodyTooLarge, InvalidSpec, PierError
from pier.domain.names import validate_model_name
from pier.domain.views import ModelVersion

app = typer.Typer(no_args_is_help=True, help="Push models and list their versions.")

PROGRESS_FROM_BYTES = 1 << 20
"""Smaller uploads finish before a progress bar would help."""

MODEL_COLUMNS = (
    Column("NAME"),
    Column("VERSION"),
    Column("FORMAT"),
    Column("SIZE"),
    Column("SHA256"),
    Column("CREATED"),
)


@app.command()
def push(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            exists=True,
            help="Model file (.onnx, .joblib/.pkl/.pickle) or a Python model directory.",
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            "-n",
            help="Model name in the project. Default: the file's name without its suffix "
            "(iris.onnx: iris), or the directory's name.",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help=f"One of {', '.join(FORMATS)}. Default: told by the path.",
            show_default=False,
        ),
    ] = None,
    trust: Annotated[
        bool,
        typer.Option(
            "--trust",
            help="Allow a model whose loading runs its code: a pickle (scikit-learn) or a "
            "Python model directory.",
        ),
    ] = False,
    example: Annotated[
        str | None,
        typer.Option(
            "--example",
            metavar="JSON|@FILE",
            help="A V2 inference request the model accepts (as `pier call --data` takes it): "
            "each instance warms the model up on it before it takes traffic. Default: inputs "
            "derived from the model's declared inputs.",
        ),
    ] = None,
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Upload a model file or Python model directory as a new version."""
    state = cli_state(ctx, output=output, project=project)
    if fmt is not None and fmt not in FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(FORMATS)}", param_hint="--format")
    if fmt is None:
        try:
            fmt = detect_format(path)
        except InvalidSpec:
            raise typer.BadParameter(
                f"{path.name} is not a model pier can tell from its name: pier serves ONNX "
                "(.onnx), scikit-learn (.joblib, .pkl, .pickle) and Python model directories; "
                f"give the format ({', '.join(FORMATS)})",
                param_hint="--format",
            ) from None
    name = name or default_model_name(path)
    try:
        validate_model_name(name, field="--name")
        body = None if example is None else read_body(example, flag="--example")
        model = _push_with_progress(state.client(), path, name, fmt, trust, body)
    except BodyTooLarge as exc:
        raise PierError(_too_large(path, exc)) from None
    except InvalidSpec as exc:
        if exc.field != "body":  # the server could not load what it received
            raise
        reason = exc.message.removeprefix("body: ")
        raise PierError(f"{path.name} is not a model pier can serve: {reason}") from None
    if state.is_json:
        print_json(model)
        return
    print_line(
        f"pushed model [bold]{model.name}[/] version {model.version} "
        f"({model.format}, {human_bytes(model.size_bytes)}, sha256 {model.sha256[:12]})"
    )


def default_model_name(path: Path) -> str:
    """'models/iris.onnx' -> 'iris'; 'bert.tar.gz' -> 'bert'; a directory: its name."""
    path = path.resolve()
    if path.is_dir():
        return path.name
    return path.name.removesuffix(".gz").removesuffix(".tar").rsplit(".", 1)[0]


def _too_large(path: Path, exc: BodyTooLarge) -> str:
    """The server's 413 in a user's words: which limit, and the setting that raises it."""
    if exc.limit_bytes is None:
        return exc.message
    what = "unpacked size" if "unpacked" in (exc.setting or "") else "upload size"
    limit = human_bytes(exc.limit_bytes)
    message = f"{path.name} is over this pier's model {what} limit of {limit}"
    if exc.setting is not None:
        message += f"; `pier up` takes a larger one with the setting {exc.setting}"
    return message


def _push_with_progress(
    client: Client, path: Path, name: str, fmt: str, trust: bool, example: bytes | None
) -> ModelVersion:
    columns = (
        TextColumn("uploading {task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(
        *columns, console=stderr, transient=True, disable=not stderr.is_terminal
    ) as progress:
        task = progress.add_task(path.name, total=None, visible=False)

        def on_progress(sent: int, total: int) -> None:
            progress.update(task, completed=sent, total=total, visible=total >= PROGRESS_FROM_BYTES)

        return client.push_model(
            path, name, fmt=fmt, trust=trust, example=example, on_progress=on_progress
        )


@app.command("list")
def list_models(ctx: typer.Context, output: OutputOpt = None, project: ProjectOpt = None) -> None:
    """List every version of every model in the project."""
    state = cli_state(ctx, output=output, project=project)
    models = state.client().list_models()
    if state.is_json:
        print_json({"models": models})
        return
    print_table(MODEL_COLUMNS, (_model_row(model) for model in models), wide=state.is_wide)


@app.command()
def get(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.", show_default=False)],
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Show the versions of one model."""
    state = cli_state(ctx, output=output, project=project)
    model = state.client().get_model(name)
    if state.is_json:
        print_json(model)
        return
    versions = model.versions
    print_table(MODEL_COLUMNS, (_model_row(version) for version in versions), wide=state.is_wide)


@app.command()
def delete(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            metavar="NAME[:VERSION]", help="Model, or one version of it.", show_default=False
        ),
    ],
    output: OutputOpt = None,
    project: ProjectOpt = None,
) -> None:
    """Delete a model (every version) or one version; refused while a node uses it."""
    name, _, version = ref.partition(":")
    if version and not version.isdigit():
        raise typer.BadParameter(f"expected NAME[:VERSION], got {ref!r}", param_hint="NAME")
    state = cli_state(ctx, output=output, project=project)
    deleted = state.client().delete_model(name, int(version) if version else None)
    if state.is_json:
        print_json(deleted)
        return
    versions = ", ".join(str(v.version) for v in deleted.deleted)
    print_line(f"deleted model [bold]{name}[/] version(s) {versions}")


def _model_row(model: ModelVersion) -> tuple[object, ...]:
    return (
        model.name,
        model.version,
        model.format,
        human_bytes(model.size_bytes),
        model.sha256[:12],
        age(model.created_at),
    )
