"""`pier call`: send a request to a node or an alias through the gateway."""

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from pier.cli.context import ProjectOpt, cli_state
from pier.cli.output import print_error
from pier.client import error_message

TEXT_TYPES = ("application/json", "text/", "application/problem+json")


def call(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(metavar="TARGET", help="A node name, or alias/NAME.", show_default=False),
    ],
    path: Annotated[
        str, typer.Argument(help="Path on the node, e.g. /v2/models/iris/infer.")
    ] = "/",
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            "-d",
            metavar="JSON|@FILE",
            help="Request body (sent with POST): inline, @FILE to read a file, @- for stdin.",
            show_default=False,
        ),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header", "-H", metavar="KEY:VALUE", help="Request header; repeat for more."
        ),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            "-X",
            help="HTTP method. Default: POST with --data, else GET.",
            show_default=False,
        ),
    ] = None,
    gateway_url: Annotated[
        str | None,
        typer.Option(
            "--gateway-url",
            envvar="PIER_GATEWAY_URL",
            help="Gateway URL. Default: the one the control plane reports.",
            show_default=False,
        ),
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Call a node or alias through the gateway and print the response body.

    An error answer with a JSON error (the gateway's, or the node's own) prints as one
    `error:` line, with exit status 1."""
    headers = parse_headers(header or [])
    body = read_body(data) if data is not None else None
    if body is not None and not any(key.lower() == "content-type" for key in headers):
        headers["Content-Type"] = (
            "application/json" if _is_json(body) else "application/octet-stream"
        )
    client = cli_state(ctx, project=project).client(gateway_url=gateway_url)
    response = client.call(target, path, method=method, data=body, headers=headers)
    is_error = response.is_error
    if is_error and (message := error_message(response)) is not None:
        print_error(message)
        raise typer.Exit(1)
    content = response.content
    if (
        content
        and _is_text(response.headers.get("content-type", ""))
        and not content.endswith(b"\n")
    ):
        content += b"\n"
    if is_error and not content:
        content = f"HTTP {response.status_code} {response.reason_phrase}\n".encode()
    typer.echo(content, nl=False, err=is_error)
    if is_error:
        raise typer.Exit(1)


def parse_headers(pairs: list[str]) -> dict[str, str]:
    """['X-A: 1'] -> {'X-A': '1'}."""
    headers: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition(":")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY:VALUE, got {pair!r}", param_hint="--header")
        headers[key.strip()] = value.strip()
    return headers


def read_body(data: str, *, flag: str = "--data") -> bytes:
    """The request body: inline text, @FILE, or @- (stdin); ``flag`` names the option."""
    if not data.startswith("@"):
        return data.encode()
    if data == "@-":
        return sys.stdin.buffer.read()
    file = Path(data[1:])
    try:
        return file.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc.strerror}", param_hint=flag) from None


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _is_text(content_type: str) -> bool:
    return content_type.startswith(TEXT_TYPES) or "+json" in content_type
