"""``python -m pier.gateway``: the data plane, in its own process.

python -m pier.gateway --host 127.0.0.1 --port 8000 [--control-url URL]
    [--token-file PATH] [--routes-file PATH] [--public-url URL] [--max-body-bytes N] [--workers N]
    [--max-request-line-bytes N] [--max-header-bytes N] [--max-headers N]
    [--header-timeout-s S] [--body-timeout-s S] [--max-pipelined-bytes N]
    [--max-connections N] [--max-sticky-sessions N]
    [--mirror-queue-size N] [--mirror-max-in-flight N] [--mirror-max-bytes N]
    [--mirror-max-body-bytes N] [--mirror-timeout-s S] [--mirror-tolerance X]
    [--mirror-batch-wait-s S]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from pier.gateway.app import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_STICKY_SESSIONS,
    GatewayConfig,
    run_gateway,
)
from pier.gateway.limits import DEFAULT_MAX_BODY_BYTES, ClientLimits, MirrorLimits
from pier.observability.logging import configure_logging

_CLIENT_LIMITS: tuple[tuple[str, type, str], ...] = (
    ("max_request_line_bytes", int, "longer request lines get 414"),
    ("max_header_bytes", int, "request headers longer than this in total get 431"),
    ("max_headers", int, "more request headers than this get 431"),
    ("header_timeout_s", float, "a request head not complete this long after it began: 408"),
    ("body_timeout_s", float, "a request body with no new bytes for this long: 408"),
    ("max_pipelined_bytes", int, "read at most this much more of a connection owed answers"),
)

_MIRROR_LIMITS: tuple[tuple[str, type, str], ...] = (
    ("queue_size", int, "mirrored copies waiting (with primaries recorded for them)"),
    ("max_in_flight", int, "mirrored copies being sent at once"),
    ("max_bytes", int, "bytes held for waiting and in-flight copies"),
    ("max_body_bytes", int, "larger requests are not mirrored, larger answers not compared"),
    ("timeout_s", float, "a copy unanswered this long fails"),
    ("tolerance", float, "mirrored outputs within this of the primary's are equal"),
    ("batch_wait_s", float, "copies are sent in bursts, the first waiting at most this"),
)


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
        "--public-url",
        help="where clients reach this gateway, as it reports it to the control plane "
        "(default http://HOST:PORT, the machine's name for an address listening everywhere)",
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
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        help="client connections per worker (nginx's worker_connections); at the cap the "
        "one idle longest is closed for a new one, and with none idle the new one gets 503",
    )
    parser.add_argument(
        "--max-sticky-sessions",
        type=int,
        default=DEFAULT_MAX_STICKY_SESSIONS,
        help="sticky sessions each worker remembers, to tell a moved one it was re-pinned",
    )
    parser.add_argument(
        "--no-instance-wait-s",
        type=float,
        default=2.0,
        help="how long a request for a node without Healthy instances waits before 503",
    )
    defaults = ClientLimits()
    for field, kind, about in _CLIENT_LIMITS:
        default = getattr(defaults, field)
        parser.add_argument(
            "--" + field.replace("_", "-"), type=kind, default=default, help=f"{about} ({default})"
        )
    mirror_defaults = MirrorLimits()
    for field, kind, about in _MIRROR_LIMITS:
        default = getattr(mirror_defaults, field)
        parser.add_argument(
            "--mirror-" + field.replace("_", "-"),
            type=kind,
            default=default,
            help=f"{about} ({default})",
        )
    args = parser.parse_args(argv)
    mirror = MirrorLimits(**{f: getattr(args, "mirror_" + f) for f, _, _ in _MIRROR_LIMITS})
    if min(mirror.queue_size, mirror.max_in_flight) < 1:
        parser.error("--mirror-queue-size and --mirror-max-in-flight must be at least 1")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.max_connections < 1:
        parser.error("--max-connections must be at least 1")
    if args.max_sticky_sessions < 1:
        parser.error("--max-sticky-sessions must be at least 1")
    return GatewayConfig(
        host=args.host,
        port=args.port,
        control_url=args.control_url,
        token_file=args.token_file,
        routes_file=args.routes_file,
        public_url=args.public_url,
        max_body_bytes=args.max_body_bytes,
        workers=args.workers,
        max_connections=args.max_connections,
        no_instance_wait_s=args.no_instance_wait_s,
        max_sticky_sessions=args.max_sticky_sessions,
        mirror=mirror,
        client=ClientLimits(**{field: getattr(args, field) for field, _, _ in _CLIENT_LIMITS}),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve until SIGTERM."""
    config = parse_args(argv)
    configure_logging()  # stderr: the gateway log when `pier up` started it
    run_gateway(config)


if __name__ == "__main__":
    main()
