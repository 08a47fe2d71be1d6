"""`pier up`: run the control plane, the gateway and the controller on this machine."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer

from pier.domain.errors import PierError
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
        str | None, typer.Option(help="Where model nodes run: local [default] or docker.")
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
    _configure_logging()
    from pier import server  # the one place the CLI reaches into the server side

    try:
        asyncio.run(server.run(settings, say=lambda line: typer.echo(line, err=False)))
    except PierError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass


def _configure_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S"),
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
