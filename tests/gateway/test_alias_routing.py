"""What the gateway does with an alias: ready gating, the header naming the node, header
routes, sticky sessions, and the alias's figures in /metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import httpx
import pytest
from gateway_processes import (
    TOKEN,
    Gateway,
    Upstream,
    node,
    start_gateway,
    stop,
    table,
    wait_until,
    write_routes,
)

from pier.domain.routes import AliasRoute, AliasTarget, HeaderRoute, RouteTable
from pier.domain.specs import Access

AUTH = {"authorization": f"Bearer {TOKEN}"}
NO_WAIT: Final = ("--no-instance-wait-s", "0.05")
"""A request for a node without instances is answered at once."""


def _alias(name: str, *targets: AliasTarget, **fields: Any) -> AliasRoute:
    return AliasRoute(
        project="default", alias=name, targets=targets, access=Access.PUBLIC, **fields
    )


def _routes(upstreams: dict[str, Upstream], *aliases: AliasRoute) -> RouteTable:
    a, b = upstreams["a"].endpoint, upstreams["b"].endpoint
    return table(
        node("v1", a),
        node("v2", b),
        node("empty", max_body_bytes=10),
        aliases=aliases,
    )


PRIVATE = _alias("priv", AliasTarget(node="v2", weight=100)).model_copy(
    update={"access": Access.PRIVATE}
)


@pytest.fixture(scope="module")
def alias_gateway(
    tmp_path_factory: pytest.TempPathFactory, upstreams: dict[str, Upstream]
) -> Iterator[Gateway]:
    """One gateway for the tests that only read: nodes v1 (instance a), v2 (b) and empty
    (none), and an alias per test (each test's figures are its alias's own)."""
    routes = _routes(
        upstreams,
        _alias(
            "ready-gated",
            AliasTarget(node="v1", weight=50),
            AliasTarget(node="v2", weight=50, ready=False),
        ),
        _alias(
            "none-ready",
            AliasTarget(node="v1", weight=50, ready=False),
            AliasTarget(node="v2", weight=50, ready=False),
            AliasTarget(node="empty", weight=50, ready=False),
        ),
        _alias("dark", AliasTarget(node="empty", weight=100)),
        _alias(
            "canary",
            AliasTarget(node="v1", weight=100),
            AliasTarget(node="v2", weight=0),
            header_routes=(HeaderRoute(header="x-canary", value="yes", node="v2"),),
        ),
        _alias("pub", AliasTarget(node="v1", weight=100)),
        PRIVATE,
        _alias("unlit", AliasTarget(node="empty", weight=100)),
    )
    started = start_gateway(tmp_path_factory.mktemp("alias-gateway"), routes, *NO_WAIT)
    yield started
    stop(started.process)


def _answered_by(client: httpx.Client, path: str, n: int, **kwargs: Any) -> list[tuple[str, str]]:
    """(instance name from the body, x-pier-node) of ``n`` requests."""
    seen = []
    for _ in range(n):
        response = client.get(path, **kwargs)
        assert response.status_code == 200, response.text
        seen.append((response.json()["instance"], response.headers["x-pier-node"]))
    return seen


def test_only_ready_nodes_take_the_alias_traffic_and_answers_name_the_node(
    alias_gateway: Gateway,
) -> None:
    with alias_gateway.client() as client:
        seen = _answered_by(client, "/default/aliases/ready-gated/x", 40)
    assert set(seen) == {("a", "v1")}


def test_with_no_ready_node_the_nodes_with_instances_share_the_traffic(
    alias_gateway: Gateway,
) -> None:
    with alias_gateway.client() as client:
        seen = _answered_by(client, "/x", 60, headers={"x-node-alias": "none-ready"})
    assert set(seen) == {("a", "v1"), ("b", "v2")}


def test_a_gateway_error_through_an_alias_names_the_node(alias_gateway: Gateway) -> None:
    with alias_gateway.client() as client:
        response = client.get("/default/aliases/dark/x")
        too_large = client.post("/default/aliases/dark/x", content=b"x" * 100)
    assert response.status_code == 503
    assert response.headers["x-pier-node"] == "empty"
    assert response.json()["node"] == "empty"
    assert response.json()["alias"] == "dark"
    assert too_large.status_code == 413
    assert too_large.headers["x-pier-node"] == "empty"


def test_a_header_route_sends_its_requests_to_its_node(alias_gateway: Gateway) -> None:
    path = "/default/aliases/canary/x"
    with alias_gateway.client() as client:
        routed = _answered_by(client, path, 20, headers={"X-Canary": "yes"})
        other = _answered_by(client, path, 20, headers={"x-canary": "no"})
        plain = _answered_by(client, path, 20)
    assert set(routed) == {("b", "v2")}
    assert set(other) == set(plain) == {("a", "v1")}


SLOW_S: Final = 3.0
"""How long the slow request takes at its instance."""


def _in_flight(gateway: Gateway, node: str) -> float | None:
    text = httpx.get(f"{gateway.url}/metrics", headers=AUTH).text
    return _sample(text, "pier_gateway_in_flight_requests", node=node, project="default")


def _draining(gateway: Gateway) -> dict[str, int]:
    draining: dict[str, int] = httpx.get(f"{gateway.url}/healthz", headers=AUTH).json()["draining"]
    return draining


def test_a_slow_request_to_a_node_taken_out_of_the_alias_finishes(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    """Its answer arrives whole, from the old node, after the alias was re-pointed and the
    old node left the routes (its instance draining); requests sent meanwhile go to the
    new node."""
    a, b = upstreams["a"].endpoint, upstreams["b"].endpoint
    to_v1 = _alias("move", AliasTarget(node="v1", weight=100))
    gateway = gateway_factory(table(node("v1", a), node("v2", b), aliases=(to_v1,)))
    to_v2 = _alias("move", AliasTarget(node="v2", weight=100))
    with ThreadPoolExecutor(1) as pool, gateway.client() as client, gateway.client() as other:
        slow = pool.submit(client.get, f"/default/aliases/move/sleep?s={SLOW_S}")
        wait_until(lambda: _in_flight(gateway, "v1") == 1, what="the slow request in flight")
        write_routes(gateway.routes_file, table(node("v2", b), aliases=(to_v2,), version=2))
        wait_until(lambda: gateway.routes_version() == 2, what="routes version 2")
        meanwhile = [other.get("/default/aliases/move/x") for _ in range(5)]
        # what the control plane waits for before it stops the old instance
        assert _draining(gateway) == {"v1-0": 1}
        assert not slow.done(), "the slow request ended before the switch (raise SLOW_S)"
        answer = slow.result(timeout=SLOW_S + 30)
    assert _draining(gateway) == {}
    assert answer.status_code == 200 and answer.json() == {"slept": True}
    assert (answer.headers["x-pier-node"], answer.headers["x-pier-instance"]) == ("v1", "v1-0")
    assert {(r.headers["x-pier-node"], r.json()["instance"]) for r in meanwhile} == {("v2", "b")}


def _sticky_routes(upstreams: dict[str, Upstream], instances: int, version: int) -> RouteTable:
    a, b = upstreams["a"].endpoint, upstreams["b"].endpoint
    endpoints = [a, b] * 3
    return table(
        node("web", *endpoints[:instances]),
        aliases=(_alias("s", AliasTarget(node="web", weight=100), sticky_header="X-Session"),),
        version=version,
    )


def _instances_of(client: httpx.Client, sessions: list[str], rounds: int) -> dict[str, set[str]]:
    """Each session's instances over ``rounds`` requests each, and whether any answer
    said it was re-pinned."""
    seen: dict[str, set[str]] = {s: set() for s in sessions}
    for _ in range(rounds):
        for session in sessions:
            response = client.get("/default/aliases/s/x", headers={"x-session": session})
            assert response.status_code == 200
            assert "x-pier-repinned" not in response.headers
            seen[session].add(response.headers["x-pier-instance"])
    return seen


def test_sticky_sessions_keep_their_instance_and_only_a_removed_ones_move(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    gateway = gateway_factory(_sticky_routes(upstreams, 4, version=1))
    sessions = [f"session-{i}" for i in range(50)]
    with gateway.client() as client:
        seen = _instances_of(client, sessions, 10)  # 500 requests
        assert all(len(instances) == 1 for instances in seen.values())
        pinned = {s: next(iter(i)) for s, i in seen.items()}
        assert len(set(pinned.values())) == 4  # the sessions spread over the instances

        write_routes(gateway.routes_file, _sticky_routes(upstreams, 3, version=2))
        wait_until(lambda: gateway.routes_version() == 2, what="routes version 2")
        moved = {s for s, i in pinned.items() if i == "web-3"}
        for session in sessions:
            response = client.get("/default/aliases/s/x", headers={"x-session": session})
            assert response.status_code == 200
            instance = response.headers["x-pier-instance"]
            if session in moved:
                assert instance != "web-3"
                assert response.headers["x-pier-repinned"] == "1"
            else:
                assert instance == pinned[session]
                assert "x-pier-repinned" not in response.headers
        after = _instances_of(client, sessions, 2)  # settled: no more re-pinning
    assert moved
    assert all(len(instances) == 1 for instances in after.values())


def _sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_alias_figures_are_in_metrics_and_private_ones_only_with_a_token(
    alias_gateway: Gateway,
) -> None:
    with alias_gateway.client() as client:
        for _ in range(3):
            assert client.get("/default/aliases/pub/x").status_code == 200
            assert client.get("/default/aliases/priv/x", headers=AUTH).status_code == 200
        assert client.get("/default/aliases/unlit/x").status_code == 503
        public = client.get("/metrics").text
        private = client.get("/metrics", headers=AUTH).text
    requests = "pier_gateway_alias_requests_total"
    assert _sample(public, requests, alias="pub", node="v1", **{"class": "2xx"}) == 3
    assert _sample(public, requests, alias="unlit", node="empty", **{"class": "5xx"}) == 1
    assert _sample(public, requests, alias="priv") is None
    assert 'alias="priv"' not in public
    assert _sample(private, requests, alias="priv", node="v2", **{"class": "2xx"}) == 3
    duration = "pier_gateway_alias_request_duration_seconds_count"
    assert _sample(private, duration, alias="pub", node="v1") == 3


def test_a_sticky_session_is_the_same_in_two_workers(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    gateway = gateway_factory(_sticky_routes(upstreams, 4, version=1), "--workers", "2")
    seen: set[str] = set()
    for _ in range(8):  # new connections: the kernel spreads them over the workers
        with gateway.client() as client:
            response = client.get("/default/aliases/s/x", headers={"X-SESSION": "one"})
            seen.add(response.headers["x-pier-instance"])
    assert len(seen) == 1


def test_a_caller_without_a_token_learns_nothing_of_a_private_aliass_nodes(
    alias_gateway: Gateway,
) -> None:
    with alias_gateway.client() as client:
        refused = client.get("/default/aliases/priv/x")
    assert refused.status_code == 401
    assert "x-pier-node" not in refused.headers
    assert "node" not in refused.json()["error"]
