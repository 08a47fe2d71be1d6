"""The gateway's own CPU cost per request, without sockets: what Python spends.

    uv run python bench/hot_path.py [--requests 200000] [--rounds 5] [--profile]

A ``Gateway`` is built in this process with one node; a client connection and a pooled
instance connection get transports that only count what is written. Each request is
fed to the client connection as one read (a wrk-like POST), and the instance's answer
(a counted 200 with a small JSON body) to the instance connection as one read, so one
iteration is the whole hot path: parse, route, forward, relay, account. The median
nanoseconds per request over the rounds is printed; ``--profile`` prints the cProfile
top functions instead. Syscalls, the event loop and the kernel are not in it: compare
it with ``bench/gateway.py``'s proxy CPU per request to see what the rest costs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import time
from typing import Any

import uvloop

from pier.domain.routes import NodeRoute, RouteInstance, RouteTable
from pier.domain.specs import Access
from pier.gateway.app import Gateway, GatewayConfig
from pier.gateway.relay import UpstreamConnection
from pier.gateway.server import ClientConnection

BODY = b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[0.1,0.2,0.3,0.4]}]}'
REQUEST = (
    b"POST /default/nodes/echo/v2/models/echo/infer HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
    b"Content-Length: %d\r\nContent-Type: application/json\r\n\r\n%s" % (len(BODY), BODY)
)
ANSWER = b'{"outputs":[{"name":"y","datatype":"FP32","shape":[1],"data":[0.5]}]}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ndate: Mon, 01 Dec 2025 10:00:00 GMT\r\nserver: uvicorn\r\n"
    b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER)
)


class CountingTransport(asyncio.Transport):
    """Accepts writes and counts them; reading is never paused for real."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: Any) -> None:
        self.written += 1

    def writelines(self, list_of_data: Any) -> None:
        self.written += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


def build(loop: asyncio.AbstractEventLoop) -> tuple[ClientConnection, UpstreamConnection]:
    gateway = Gateway(GatewayConfig(), loop)
    instance = RouteInstance(instance_id="echo-1", endpoint="http://127.0.0.1:9")
    route = NodeRoute(project="default", node="echo", access=Access.PUBLIC, instances=(instance,))
    gateway.apply(RouteTable(version=1, nodes={"default/echo": route}))
    [upstream] = gateway.router.nodes[b"default/echo"].instances
    conn = UpstreamConnection(upstream, loop)
    conn.connection_made(CountingTransport())
    upstream.put_idle(conn)
    client = gateway.accept()
    assert isinstance(client, ClientConnection)
    client.connection_made(CountingTransport())
    return client, conn


def run(client: ClientConnection, conn: UpstreamConnection, requests: int) -> float:
    """CPU nanoseconds per request (thread time: not the time this process waits
    for a CPU on a shared machine)."""
    to_gateway, to_relay = client.data_received, conn.data_received
    started = time.thread_time_ns()
    for _ in range(requests):
        to_gateway(REQUEST)
        to_relay(RESPONSE)
    return (time.thread_time_ns() - started) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one round instead")
    args = parser.parse_args()
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    client, conn = build(loop)
    run(client, conn, 1000)  # warm up, and check that requests go through
    if conn.transport.written != 1000 or client.transport.written != 1000:
        raise SystemExit("requests did not go through the hot path")
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(run, client, conn, args.requests)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        return
    results = [run(client, conn, args.requests) for _ in range(args.rounds)]
    print(
        f"{statistics.median(results):.0f} ns per request (median of {args.rounds} rounds of "
        f"{args.requests}; min {min(results):.0f}, max {max(results):.0f})"
    )


if __name__ == "__main__":
    main()
