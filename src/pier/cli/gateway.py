"""`pier gateway`: run a gateway on this machine against a control plane on any machine.

It checks what it can before it starts (the token file is readable, the control plane
answers and takes the token as its admin's), then becomes ``python -m pier.gateway``
(exec: the same process id, the data plane's own process, none of the CLI in it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import httpx
import typer

from pier.cli.output import print_error

CHECK_TIMEOUT_S = 5.0


def gateway(
    control_url: Annotated[
        str,
        typer.Option(
            "--control-url",
            help="The control plane (`pier up`'s API), e.g. http://10.0.0.5:8080.",
            show_default=False,
        ),
    ],
    token_file: Annotated[
        Path,
        typer.Option(
            "--token-file",
            help="A file holding the installation admin's token (a copy of `pier up`'s "
            "<data dir>/admin.token); re-read at each route poll and report.",
            show_default=False,
        ),
    ],
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0: every address).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port clients send inference requests to.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes sharing the port (SO_REUSEPORT).")
    ] = 1,
    routes_file: Annotated[
        Path,
        typer.Option(
            help="The last route table, served at start while the control plane is away; "
            "the gateway's id is kept beside it (<name>.id)."
        ),
    ] = Path(".pier-gateway/routes.json"),
    public_url: Annotated[
        str | None,
        typer.Option(
            help="Where clients reach this gateway, as the control plane lists it "
            "(default: http://HOST:PORT).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a gateway here that takes its routes from the control plane at --control-url.

    It long-polls the control plane for routes and reports what it serves,
    drains and counts (POST /api/v1/gateways/ID/report): a node counts as
    routed, and an instance as drained, only once every live gateway says
    so, and load figures add up over gateways. A gateway that reports
    nothing for PIER_GATEWAY_REGISTRY__TIMEOUT_S (a setting of the control
    plane) is left out until it reports again. `pier up` starts its own
    gateway the same way; GET /api/v1/gateways lists them all.

    Instances must be reachable from this machine at the addresses the
    control plane routes them to. SIGTERM or Ctrl-C stops it once the
    requests in flight are done."""
    token = _read_token(token_file)
    _check_control_plane(control_url.rstrip("/"), token)
    argv = [
        sys.executable, "-m", "pier.gateway", "--host", host, "--port", str(port),
        "--workers", str(workers), "--control-url", control_url.rstrip("/"),
        "--token-file", str(token_file.resolve()), "--routes-file", str(routes_file.resolve()),
    ]  # fmt: skip
    if public_url:
        argv += ["--public-url", public_url]
    sys.stdout.flush()
    os.execv(sys.executable, argv)


def _read_token(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        _fail(f"--token-file {path}: cannot read it ({exc.strerror or type(exc).__name__})")
    if not token:
        _fail(f"--token-file {path}: it is empty; copy `pier up`'s <data dir>/admin.token")
    return token


def _check_control_plane(url: str, token: str) -> None:
    """The control plane at ``url`` answers and takes ``token`` as the admin's."""
    try:
        response = httpx.get(
            f"{url}/api/v1/gateways", headers={"Authorization": f"Bearer {token}"},
            timeout=CHECK_TIMEOUT_S, trust_env=False,
        )  # fmt: skip
    except httpx.InvalidURL:
        _fail(f"--control-url {url}: not a URL (e.g. http://10.0.0.5:8080)")
    except httpx.HTTPError as exc:
        _fail(f"--control-url {url}: no control plane answers there ({type(exc).__name__})")
    if response.status_code == 401:
        _fail("the control plane refused the token in --token-file (401)")
    if response.status_code == 403:
        _fail("the token in --token-file is not the installation admin's, which a gateway needs")
    if response.status_code != 200:
        _fail(f"--control-url {url}: answered {response.status_code}; is it pier's API?")


def _fail(message: str) -> NoReturn:
    print_error(message)
    raise typer.Exit(1)
