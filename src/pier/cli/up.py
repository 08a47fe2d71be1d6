"""`pier up`: run the control plane, the gateway and the controller on this machine.

Everything `pier up` writes (what it says, its log) goes through pipe-safe streams: with
``pier up | tee log``, Ctrl-C kills ``tee`` too, and the lines written while stopping
must not abort the stopping.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from pier.domain.errors import PierError
from pier.observability.logging import SafeStream, configure_logging
from pier.settings import Settings


def up(
    host: Annotated[str | None, typer.Option(help="Address of the REST API.")] = None,
    port: Annotated[int | None, typer.Option(help="Port of the REST API [default: 8080].")] = None,
    gateway_port: Annotated[
        int | None, typer.Option(help="Port of the gateway [default: 8000].")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Store, models, logs, admin.token [env PIER_DATA_DIR; default .pier]."),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL [default: SQLite under the data dir].")
    ] = None,
    runtime: Annotated[
        str | None,
        typer.Option(
            help="Runtime required at start-up: local (the default; Docker optional), "
            "docker (refuse to start without an engine) or swarm (refuse to start without a "
            "swarm manager at DOCKER_HOST; image nodes then run on the swarm). Model nodes run "
            "on local; a node's own runtime field wins."
        ),
    ] = None,
) -> None:
    """Run pier on this machine: REST API, gateway, controller (Ctrl-C stops it all)."""
    overrides: dict[str, Any] = {
        "host": host, "port": port, "data_dir": data_dir, "database_url": database_url,
        "runtime": runtime,
    }  # fmt: skip
    values = {k: v for k, v in overrides.items() if v is not None}
    settings = Settings(**values)
    if gateway_port is not None:
        settings.gateway.port = gateway_port
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a closed pipe is EPIPE, handled below
    out = SafeStream(sys.stdout)
    err = SafeStream(sys.stderr)
    configure_logging(err, timestamp_fmt="%H:%M:%S", colors=err.isatty())
    import uvloop

    from pier import server  # the one place the CLI reaches into the server side

    try:
        # uvloop: the control plane's own I/O (health checks, the gateway's reports, the
        # API) costs less of a core than on asyncio's selector loop, as the gateway's does
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(server.run(settings, say=out.line))
    except PierError as exc:
        err.line(f"error: {exc.message}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass
