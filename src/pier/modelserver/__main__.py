"""``python -m pier.modelserver``: serve one model over the V2 protocol (HTTP).

    python -m pier.modelserver --name NAME --format onnx|sklearn|python --path PATH
        [--version 1] [--host 127.0.0.1] [--port 0]
        [--http builtin|uvicorn] [--max-body-bytes 16777216] [--example REQUEST.json]
        [--workers N] [--max-queue 256] [--max-batch-size 1] [--batch-delay-ms 0]

``--format`` may be left out when the path tells it (see
:func:`pier.modelserver.loaders.detect_format`). The socket is bound first (``--port
0`` picks a free port; the log line ``model server listening ... port=N`` says which),
then the model loads in a background thread while the server already answers
``/v2/health/live``; ``/v2/health/ready`` turns 200 once the model is loaded and a
warm-up inference passed: on ``--example`` (a V2 JSON inference request) when given,
else on inputs derived from the model (see :mod:`pier.modelserver.warmup`).

Inference runs on ``--workers`` threads (default: the CPUs this process may use),
never on the event loop, and at most ``--max-queue`` requests are held (running or
waiting); more get 503. ``--max-batch-size`` above 1 turns on dynamic batching for a
model whose inputs and outputs start with a batch dimension: concurrent requests run
as one call of up to that many rows, a batch waiting at most ``--batch-delay-ms`` for
more while a worker is free (see :mod:`pier.modelserver.batching`).

Exit status: 0 after SIGTERM or SIGINT, within about a second (idle connections close
at once, requests still arriving get up to a second); 1 when the model fails to load
(the reason is logged as ``model load failed``; a failed warm-up's on that one line, as
``error=``); 2 for bad arguments. Logs are structlog lines on stderr; nothing goes to
stdout and there is no access log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import structlog
import uvloop

from pier.modelserver import protocol
from pier.modelserver.app import DEFAULT_MAX_BODY_BYTES, ModelServerApp
from pier.modelserver.dataplane import DataPlane
from pier.modelserver.loaders import FORMATS, describe_model, detect_format
from pier.modelserver.metrics import ModelServerMetrics
from pier.modelserver.warmup import WarmUpFailed
from pier.modelserver.workers import DEFAULT_QUEUE_LIMIT
from pier.observability.logging import configure_logging

log = structlog.get_logger("pier.modelserver")

GRACEFUL_SHUTDOWN_S = 1
TRITON_FORMAT = "triton"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line described in the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m pier.modelserver",
        description="Serve one model over the KServe V2 / Open Inference Protocol (HTTP).",
    )
    parser.add_argument("--name", required=True, help="model name used in /v2/models/{name}")
    parser.add_argument(
        "--format",
        choices=sorted({*FORMATS, TRITON_FORMAT}),
        help="saved model format; guessed from --path when left out (triton: --describe "
        "only; a Triton model directory is served by tritonserver, engine triton)",
    )
    parser.add_argument("--path", required=True, type=Path, help="model file or directory")
    parser.add_argument("--version", default="1", help="model version (default: 1)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="larger request bodies get 413, counted once inflated (default: 16 MiB)",
    )
    parser.add_argument(
        "--http",
        choices=("builtin", "uvicorn"),
        default="builtin",
        help="HTTP server: the built-in asyncio/httptools one (default, faster) or uvicorn",
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="threads that run inference (default: the CPUs this process may use)",
    )
    parser.add_argument(
        "--max-queue",
        type=_positive,
        default=DEFAULT_QUEUE_LIMIT,
        help=f"requests held at once, running or waiting; more get 503 "
        f"(default: {DEFAULT_QUEUE_LIMIT})",
    )
    parser.add_argument(
        "--max-batch-size",
        type=_positive,
        default=1,
        help="dynamic batching: rows combined into one model call (default: 1, off)",
    )
    parser.add_argument(
        "--batch-delay-ms",
        type=float,
        default=0.0,
        help="dynamic batching: how long a batch may wait for more requests (default: 0)",
    )
    parser.add_argument(
        "--example",
        type=Path,
        help="a V2 JSON inference request the model accepts, for its warm-up",
    )
    parser.add_argument(
        "--describe",
        action="store_true",
        help="print the model's V2 metadata as JSON and exit (the control plane's upload check)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.batch_delay_ms <= 60_000:
        parser.error("--batch-delay-ms must be between 0 and 60000")
    if args.format is None:
        args.format = detect_format(args.path)
        if args.format is None:
            parser.error(f"cannot tell the format of {args.path}; pass --format")
    if args.format == TRITON_FORMAT and not args.describe:
        parser.error("a Triton model directory is served by tritonserver: engine triton")
    return args


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; bound before loading so that liveness answers early."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio turns Nagle off only on accepted sockets of that protocol
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def start_loading(dataplane: DataPlane, on_failure: Callable[[], object]) -> threading.Thread:
    """Load the model in a daemon thread; on failure, log it and call ``on_failure``."""

    def load() -> None:
        try:
            dataplane.load()
        except WarmUpFailed as exc:  # the model's answer, not a fault of the server
            log.error("model load failed", model=dataplane.name, error=str(exc))
            on_failure()
        except BaseException:
            log.exception("model load failed", model=dataplane.name, path=str(dataplane.path))
            on_failure()

    thread = threading.Thread(target=load, name="model-load", daemon=True)
    thread.start()
    return thread


def serve_builtin(app: ModelServerApp, sock: socket.socket, dataplane: DataPlane) -> None:
    """Serve with :mod:`pier.modelserver.protocol` on uvloop until SIGTERM/SIGINT."""
    stop_requested = threading.Event()

    def stop_early(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop_early)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        if stop_requested.is_set():
            stop.set()
        start_loading(dataplane, lambda: loop.call_soon_threadsafe(stop.set))
        await protocol.serve(app, sock, stop, grace_s=GRACEFUL_SHUTDOWN_S)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run())


def serve_uvicorn(app: ModelServerApp, sock: socket.socket, dataplane: DataPlane) -> None:
    """Serve the ASGI app with uvicorn (uvloop, httptools) until SIGTERM/SIGINT."""
    import uvicorn  # only here: it takes a tenth of a second to import

    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        log_config=None,  # uvicorn's records go through pier's formatter (redacted)
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = uvicorn.Server(config)

    def stop(signum: int, frame: FrameType | None) -> None:
        # Until uvicorn installs its handlers, and when it re-raises the signal after
        # its graceful shutdown: ask it to stop instead of dying with the signal.
        server.should_exit = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    start_loading(dataplane, lambda: setattr(server, "should_exit", True))
    server.run(sockets=[sock])


def describe(path: Path, fmt: str) -> int:
    """Print the metadata of the model at ``path`` as JSON; 1 with the reason if it fails."""
    try:
        if fmt == TRITON_FORMAT:  # imported here: tritonclient's protobufs load slowly
            from pier.modelserver.triton.repository import describe_directory

            metadata = describe_directory(path)
        else:
            metadata = describe_model(path, fmt)
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(metadata))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the model server until SIGTERM/SIGINT; return the exit status."""
    args = parse_args(argv)
    configure_logging()  # key-value lines on stderr, no colours (logs are collected)
    if args.describe:
        return describe(args.path, args.format)
    metrics = ModelServerMetrics(args.name)
    example = None if args.example is None else args.example.read_bytes()
    dataplane = DataPlane(
        name=args.name,
        version=args.version,
        fmt=args.format,
        path=args.path,
        metrics=metrics,
        workers=args.workers,
        queue_limit=args.max_queue,
        max_batch_size=args.max_batch_size,
        batch_delay_s=args.batch_delay_ms / 1000,
        example=example,
    )
    app = ModelServerApp(dataplane, max_body_bytes=args.max_body_bytes)
    sock = bind_socket(args.host, args.port)
    host, port = sock.getsockname()[:2]
    log.info("model server listening", host=host, port=port, model=args.name, http=args.http)
    serve = serve_uvicorn if args.http == "uvicorn" else serve_builtin
    serve(app, sock, dataplane)
    dataplane.close()
    is_loading = dataplane.state == "loading"
    is_inferring = dataplane.pool.held > 0
    status = 1 if dataplane.state == "failed" else 0
    log.info("model server stopped", model=args.name, status=status)
    if is_loading or is_inferring:
        # Never wait for (or tear the interpreter down under) a half-loaded model, nor
        # for a predict() still running on a worker thread past the grace period.
        sys.stderr.flush()
        os._exit(status)
    return status


if __name__ == "__main__":
    sys.exit(main())
