"""The gateway's own CPU cost per request, without sockets: what Python spends.

    uv run python bench/hot_path.py [--requests 200000] [--rounds 5]
        [--targets node node-x2 alias mirrored] [--mirror-percent 10] [--burst 1] [--profile]

A ``Gateway`` is built in this process with three nodes of one instance each (``e1``,
``e2``, ``e3``), a node ``e12`` whose two instances are ``e1``'s and ``e2``'s
(``node-x2``: the alias's two upstreams without the alias), an alias ``pair`` over ``e1``
and ``e2`` (50/50) and an alias
``mirrored``, the same with ``--mirror-percent`` of its requests copied to ``e3`` (as in
``bench/alias.py``). Client and pooled instance connections get transports that only
count what is written. Each request is fed to the client connection as one read (a
wrk-like POST), and the instance's answer (a counted 200 with a small JSON body) to the
instance connection the request went to as one read, so one iteration is the whole hot
path: parse, route, forward, relay, account (and, mirrored, the copy: queued, sent,
answered, compared; ``--burst N``: N copies sent together, as the gateway sends
them in bursts). The median nanoseconds per request over the rounds is printed per
target, with its ratio to ``node``, the rounds interleaved; ``--profile`` prints the
cProfile top functions of each target instead. Syscalls, the event loop and the kernel
are not in it: compare it with ``bench/gateway.py``'s proxy CPU per request to see what
the rest costs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import time
from collections import defaultdict
from typing import Any

import uvloop

from pier.domain.routes import (
    AliasMirror,
    AliasRoute,
    AliasTarget,
    NodeRoute,
    RouteInstance,
    RouteTable,
)
from pier.domain.specs import Access
from pier.gateway.app import Gateway, GatewayConfig
from pier.gateway.relay import UpstreamConnection
from pier.gateway.server import ClientConnection

BODY = b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[0.1,0.2,0.3,0.4]}]}'
PATHS = {
    "node": b"/default/nodes/e1",
    "node-x2": b"/default/nodes/e12",
    "alias": b"/default/aliases/pair",
    "mirrored": b"/default/aliases/mirrored",
}
ANSWER = b'{"outputs":[{"name":"y","datatype":"FP32","shape":[1],"data":[0.5]}]}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ndate: Mon, 01 Dec 2025 10:00:00 GMT\r\nserver: uvicorn\r\n"
    b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER)
)


def request(path: bytes) -> bytes:
    """A wrk-like POST of a small V2 body to ``path``."""
    return (
        b"POST %s/v2/models/echo/infer HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
        b"Content-Length: %d\r\nContent-Type: application/json\r\n\r\n%s" % (path, len(BODY), BODY)
    )


class CountingTransport(asyncio.Transport):
    """Accepts writes and counts them; reading is never paused for real. ``sent``: where
    an instance connection's transport says that a request went out on it."""

    def __init__(self, sent: list[UpstreamConnection] | None = None) -> None:
        super().__init__()
        self.written = 0
        self.sent = sent
        self.conn: UpstreamConnection | None = None

    def write(self, data: Any) -> None:
        self.written += 1
        if self.sent is not None:
            self.sent.append(self.conn)  # type: ignore[arg-type]  # set by build

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


def routes(mirror_percent: float) -> RouteTable:
    nodes = {
        f"default/{name}": NodeRoute(
            project="default",
            node=name,
            access=Access.PUBLIC,
            idle_timeout_s=1e9,  # pooled connections stay however long a round takes
            instances=(
                RouteInstance(instance_id=f"{name}-1", endpoint=f"http://127.0.0.1:{port}"),
            ),
        )
        for name, port in (("e1", 9), ("e2", 10), ("e3", 11))
    }
    nodes["default/e12"] = NodeRoute(  # the alias's two instances as one node's
        project="default",
        node="e12",
        access=Access.PUBLIC,
        idle_timeout_s=1e9,
        instances=tuple(
            RouteInstance(instance_id=f"e12-{port}", endpoint=f"http://127.0.0.1:{port}")
            for port in (9, 10)
        ),
    )
    pair = (AliasTarget(node="e1", weight=50), AliasTarget(node="e2", weight=50))
    aliases = {
        "default/pair": AliasRoute(
            project="default", alias="pair", access=Access.PUBLIC, targets=pair
        ),
        "default/mirrored": AliasRoute(
            project="default",
            alias="mirrored",
            access=Access.PUBLIC,
            targets=pair,
            mirrors=(AliasMirror(node="e3", percent=mirror_percent),),
        ),
    }
    return RouteTable(version=1, nodes=nodes, aliases=aliases)


class DueBursts:
    """The mirrors' loop, as the bench drives it: ``time`` from the real loop, and the
    burst ``call_soon`` asks for kept for the bench to run (the real loop never runs
    here, so its handles would pile up, hundreds of thousands a round, and every
    allocation after them would pay for the memory they hold)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.due: list[Any] = []

    def time(self) -> float:
        return self.loop.time()

    def call_soon(self, callback: Any) -> asyncio.Handle:
        self.due.append(callback)
        return asyncio.Handle(callback, (), self.loop)

    def create_task(self, coro: Any) -> asyncio.Task[Any]:
        return self.loop.create_task(coro)

    def run_due(self) -> None:
        due, self.due = self.due, []
        for callback in due:
            callback()


class MirrorsOwner:
    """What ``Mirrors`` needs of the gateway, with ``DueBursts`` for its loop."""

    def __init__(self, gateway: Gateway, loop: DueBursts) -> None:
        self.loop = loop
        self.deadlines = gateway.deadlines


class Bench:
    """One gateway, one client connection, one pooled connection per instance."""

    def __init__(self, loop: asyncio.AbstractEventLoop, mirror_percent: float) -> None:
        self.gateway = gateway = Gateway(GatewayConfig(), loop)
        gateway.apply(routes(mirror_percent))
        self.bursts = DueBursts(loop)
        gateway.mirrors.owner = MirrorsOwner(gateway, self.bursts)  # type: ignore[assignment]
        self.sent: list[UpstreamConnection] = []
        self.conns = []
        for upstream in gateway.router.upstreams:
            conn = UpstreamConnection(upstream, loop)
            transport = CountingTransport(self.sent)
            transport.conn = conn
            conn.connection_made(transport)
            upstream.put_idle(conn)
            self.conns.append(conn)
        client = gateway.accept()
        assert isinstance(client, ClientConnection)
        client.connection_made(CountingTransport())
        self.client = client

    def run(self, target: str, requests: int, burst: int = 1) -> float:
        """CPU nanoseconds per request (thread time: not the time this process waits
        for a CPU on a shared machine). Copies are sent ``burst`` at a time."""
        to_gateway = self.client.data_received
        data = request(PATHS[target])
        sent = self.sent
        mirrors = self.gateway.mirrors
        send_copies = self.bursts.run_due  # what the loop runs when a burst is due
        started = time.thread_time_ns()
        for index in range(requests):
            to_gateway(data)
            sent.pop().data_received(RESPONSE)
            if sent:  # copies wait in the mirrors' queue, not in the instance's
                raise SystemExit("a request went out twice")
            if len(mirrors._queue) >= burst or (mirrors._queue and index == requests - 1):
                send_copies()
                while sent:  # the burst's answers, each in one read
                    sent.pop().data_received(RESPONSE)
        return (time.thread_time_ns() - started) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--targets", nargs="+", choices=tuple(PATHS), default=list(PATHS))
    parser.add_argument("--mirror-percent", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=1, help="copies sent together")
    parser.add_argument("--profile", action="store_true", help="cProfile one round instead")
    args = parser.parse_args()
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    bench = Bench(loop, args.mirror_percent)
    for target in args.targets:
        bench.run(target, 1000)  # warm up, and check that requests go through
    if bench.client.transport.written != 1000 * len(args.targets):
        raise SystemExit("requests did not go through the hot path")
    if args.profile:
        for target in args.targets:
            print(f"--- {target}")
            profile = cProfile.Profile()
            profile.runcall(bench.run, target, args.requests, args.burst)
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        return
    results: dict[str, list[float]] = defaultdict(list)
    for _ in range(args.rounds):
        for target in args.targets:
            results[target].append(bench.run(target, args.requests, args.burst))
    print(f"median of {args.rounds} rounds of {args.requests} requests, CPU ns per request")
    base = statistics.median(results[args.targets[0]])
    for target in args.targets:
        runs = results[target]
        median = statistics.median(runs)
        print(
            f"{target:<10}{median:>8.0f} ns  x {args.targets[0]} {base / median:.2f}"
            f"  (min {min(runs):.0f}, max {max(runs):.0f})"
        )


if __name__ == "__main__":
    main()
