"""A gateway of several worker processes: each listens on a port of its own too, and the
control plane's reader (GatewayView) combines what every worker says, so the load it
scales on and the routes it waits for cover all of them, not whichever worker the kernel
handed one connection to."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
from gateway_processes import (
    FakeControlPlane,
    Gateway,
    Upstream,
    alias,
    node,
    table,
    wait_until,
    write_routes,
)

from pier.controller.gateway_view import GatewayView, parse_in_flight_seconds
from pier.domain.names import NodeKey, NodeName, ProjectName

SLOW = NodeKey(ProjectName("default"), NodeName("slow"))


def worker_urls(gateway: Gateway) -> list[str]:
    health = httpx.get(f"{gateway.url}/healthz").json()
    return list(health["workers"])


def test_each_worker_answers_on_its_own_port_and_serves_the_routes(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    gateway = gateway_factory(table(node("one", upstreams["a"].endpoint)), "--workers", "3")
    urls = worker_urls(gateway)
    assert len(urls) == 3 and len(set(urls)) == 3
    for index, url in enumerate(urls):
        assert httpx.get(f"{url}/healthz").json()["worker"] == index
        wait_until(lambda u=url: httpx.get(f"{u}/healthz").json()["routes_version"] == 1)
        answer = httpx.get(f"{url}/default/nodes/one/x")
        assert answer.status_code == 200 and answer.json()["instance"] == "a"


async def test_the_load_read_by_the_controller_adds_up_every_worker(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    gateway = gateway_factory(table(node("slow", upstreams["a"].endpoint)), "--workers", "3")
    urls = worker_urls(gateway)
    async with httpx.AsyncClient(timeout=10) as client:
        view = GatewayView.over_http(gateway.url, client)
        before = (await view.load() or {}).get(SLOW, 0.0)
        # Two requests of 0.4 s on each of two workers: 1.6 s in flight in all.
        targets = [urls[0], urls[0], urls[2], urls[2]]
        answers = await asyncio.gather(
            *(client.get(f"{url}/default/nodes/slow/sleep?s=0.4") for url in targets)
        )
        assert all(a.status_code == 200 for a in answers)
        total = (await view.load() or {})[SLOW] - before
        one_worker = parse_in_flight_seconds((await client.get(f"{urls[0]}/metrics")).text)
    assert 1.5 <= total <= 4.0, total
    assert one_worker[SLOW] < 0.75 * total  # reading one worker would have seen about half


def exchange_bytes(url: str, request: bytes) -> int:
    """Send ``request`` (asking for a close) to the worker at ``url``; the bytes of the
    whole answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200"), received[:80]
    return len(received)


async def test_the_bytes_read_by_the_controller_add_up_every_worker_by_node_alias_and_instance(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    routes = table(node("one", upstreams["a"].endpoint), aliases=(alias("pub", ("one", 100)),))
    gateway = gateway_factory(routes, "--workers", "2")
    urls = worker_urls(gateway)
    for url in urls:
        wait_until(lambda u=url: httpx.get(f"{u}/healthz").json()["routes_version"] == 1)
    close = b" HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
    post = b"POST /default/nodes/one/big?n=5000" + close + b"content-length: 900\r\n\r\n"
    direct = [
        exchange_bytes(urls[0], post + b"b" * 900),
        exchange_bytes(urls[1], b"GET /default/nodes/one/chunked?n=7000" + close + b"\r\n"),
    ]
    through_alias = exchange_bytes(
        urls[1], b"GET /default/aliases/pub/big?n=3000" + close + b"\r\n"
    )
    async with httpx.AsyncClient(timeout=10) as client:
        traffic = await GatewayView.over_http(gateway.url, client).traffic()
    assert traffic is not None
    one = traffic.nodes[("default", "one")]
    assert one.bytes_out == sum(direct) + through_alias  # every byte the clients got
    assert 900 + 3 * 50 < one.bytes_in < 900 + 3 * 400  # request lines, headers, a body
    assert traffic.aliases[("default", "pub", "one")].bytes_out == through_alias
    instance = traffic.instances[("default", "one", "one-0")]
    assert (instance.bytes_in, instance.bytes_out) == (one.bytes_in, one.bytes_out)


async def test_the_routes_version_read_by_the_controller_is_the_oldest_any_worker_serves(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    gateway = gateway_factory(table(node("one", upstreams["a"].endpoint)), "--workers", "2")
    async with httpx.AsyncClient(timeout=10) as client:
        view = GatewayView.over_http(gateway.url, client)
        write_routes(gateway.routes_file, table(node("one", upstreams["b"].endpoint), version=9))
        for _ in range(200):
            status = await view.status()
            if status is not None and status.routes_version == 9:
                break
            await asyncio.sleep(0.02)
        for url in worker_urls(gateway):  # once it says 9, every worker serves 9
            assert (await client.get(f"{url}/healthz")).json()["routes_version"] == 9


def test_each_worker_says_which_it_is_when_it_polls_for_routes(
    gateway_factory: Callable[..., Gateway],
    upstreams: dict[str, Upstream],
    control_plane: FakeControlPlane,
) -> None:
    control_plane.publish(table(node("one", upstreams["a"].endpoint), version=1))
    gateway_factory(
        None, "--workers", "2", "--control-url", f"http://127.0.0.1:{control_plane.port}"
    )
    wait_until(
        lambda: (
            {(q.get("worker"), q.get("workers")) for q in control_plane.queries}
            == {("0", "2"), ("1", "2")}
        ),
        what="a poll from each worker",
    )
