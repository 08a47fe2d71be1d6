"""Fixtures of the gateway tests: shared instances ``a`` and ``b``, a shared gateway with
the routes most tests need, and a factory for gateways of a test's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gateway_processes import (
    FakeControlPlane,
    Gateway,
    Upstream,
    accepts,
    alias,
    free_port,
    node,
    start_gateway,
    start_upstream,
    stop,
    table,
    wait_until,
)

from pier.domain.routes import RouteTable
from pier.domain.specs import Access


@pytest.fixture(scope="session")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Upstream]]:
    """Two test instances, ``a`` and ``b``, shared by the gateway tests."""
    log_dir = tmp_path_factory.mktemp("upstreams")
    started = {name: start_upstream(name, log_dir) for name in ("a", "b")}
    try:
        for upstream in started.values():
            wait_until(lambda u=upstream: accepts(u.port), what=f"upstream {upstream.name}")
        yield started
    finally:
        for upstream in started.values():
            stop(upstream.process)


@pytest.fixture(scope="session")
def dead_endpoint() -> str:
    """An endpoint where nothing listens: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstreams: dict[str, Upstream], dead_endpoint: str
) -> Iterator[Gateway]:
    """One gateway with the routes most tests need."""
    a, b = upstreams["a"].endpoint, upstreams["b"].endpoint
    routes = table(
        node("echo", a, b),
        node("private", a, access=Access.PRIVATE),
        node("small", a, max_body_bytes=1000),
        node("slow", a, timeout_s=0.5),
        node("flaky", dead_endpoint, a),
        node("empty"),
        node("echo", b, project="team"),
        aliases=(
            alias("stable", ("echo", 100), ("empty", 0)),
            alias("secured", ("echo", 1), access=Access.PRIVATE),
        ),
    )
    started = start_gateway(
        tmp_path_factory.mktemp("gateway"), routes, "--no-instance-wait-s", "0.3"
    )
    yield started
    stop(started.process)


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Start gateways of a test's own; they stop when the test ends."""
    started: list[Gateway] = []

    def start(routes: RouteTable | None, *args: str, routes_file: Path | None = None) -> Gateway:
        directory = tmp_path / f"gw{len(started)}"
        directory.mkdir()
        gateway = start_gateway(directory, routes, *args, routes_file=routes_file)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        stop(gateway.process)


@pytest.fixture
def control_plane() -> Iterator[FakeControlPlane]:
    plane = FakeControlPlane()
    plane.start()
    yield plane
    plane.stop()
