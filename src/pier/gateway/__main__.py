"""``python -m pier.gateway``: the data plane, in its own process.

python -m pier.gateway --host 127.0.0.1 --port 8000 [--control-url URL]
    [--token-file PATH] [--routes-file PATH] [--max-body-bytes N] [--workers N]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from pier.gateway.app import GatewayConfig, run_gateway
from pier.gateway.limits import DEFAULT_MAX_BODY_BYTES
from pier.observability.logging import configure_logging


def parse_args(argv: Sequence[str] | None = None) -> GatewayConfig:
    """The gateway's configuration from its command line."""
    parser = argparse.ArgumentParser(
        prog="python -m pier.gateway",
        description="pier's gateway: routes inference requests to Healthy instances.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument(
        "--control-url",
        help="control plane to long-poll for routes (e.g. http://127.0.0.1:8080); "
        "without it the routes file is the only source and is re-read when it changes",
    )
    parser.add_argument(
        "--token-file", type=Path, help="bearer token for the control plane, re-read per poll"
    )
    parser.add_argument(
        "--routes-file",
        type=Path,
        help="last known route table: loaded at start, rewritten on every change",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="request/response body limit for nodes without their own (default 16 MiB)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)"
    )
    parser.add_argument(
        "--no-instance-wait-s",
        type=float,
        default=2.0,
        help="how long a request for a node without Healthy instances waits before 503",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return GatewayConfig(
        host=args.host,
        port=args.port,
        control_url=args.control_url,
        token_file=args.token_file,
        routes_file=args.routes_file,
        max_body_bytes=args.max_body_bytes,
        workers=args.workers,
        no_instance_wait_s=args.no_instance_wait_s,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve until SIGTERM."""
    config = parse_args(argv)
    configure_logging()  # stderr: the gateway log when `pier up` started it
    run_gateway(config)


if __name__ == "__main__":
    main()
