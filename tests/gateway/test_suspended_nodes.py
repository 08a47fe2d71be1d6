"""A suspended node is answered 503 JSON naming it, at once and without waiting for an
instance; its privacy holds; an alias over it answers from its other nodes."""

from __future__ import annotations

from collections.abc import Callable

from gateway_processes import TOKEN, Gateway, Upstream, alias, node, table

from pier.domain.routes import RouteTable
from pier.domain.specs import Access

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def routes(upstreams: dict[str, Upstream]) -> RouteTable:
    a, b = upstreams["a"].endpoint, upstreams["b"].endpoint
    return table(
        node("echo", a),
        # an instance still listed (as while it drains) takes no new request either
        node("paused", b, suspended=True, scales_from_zero=True, timeout_s=30.0),
        node("hidden", access=Access.PRIVATE, suspended=True),
        aliases=(alias("prod", ("echo", 50), ("paused", 50)),),
    )


def test_a_suspended_node_is_503_json_naming_it_without_a_wait(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    gateway = gateway_factory(routes(upstreams), "--no-instance-wait-s", "30")
    with gateway.client() as client:
        response = client.post("/default/nodes/paused/infer", content=b"{}")
        by_header = client.get("/infer", headers={"x-node-id": "paused"})
    assert response.status_code == 503  # at once: the client's timeout is shorter than 30 s
    error = response.json()  # the V2 error format: the message is "error"
    assert (error["code"], error["node"], error["project"]) == (
        "node_suspended",
        "paused",
        "default",
    )
    assert "'paused'" in error["error"] and "suspended" in error["error"]
    assert "pier node resume paused" in error["error"]
    assert by_header.status_code == 503 and by_header.json()["code"] == "node_suspended"


def test_a_suspended_private_node_tells_only_a_caller_with_a_token(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    gateway = gateway_factory(routes(upstreams))
    with gateway.client() as client:
        anonymous = client.get("/default/nodes/hidden/x")
        known = client.get("/default/nodes/hidden/x", headers=AUTH)
    assert anonymous.status_code == 401
    assert known.status_code == 503
    assert (known.json()["code"], known.json()["node"]) == (
        "node_suspended",
        "hidden",
    )


def test_an_alias_answers_from_its_nodes_that_are_not_suspended(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    gateway = gateway_factory(routes(upstreams))
    with gateway.client() as client:
        answers = [client.get("/default/aliases/prod/x") for _ in range(40)]
    assert {r.status_code for r in answers} == {200}
    assert {r.headers["x-pier-instance"] for r in answers} == {"echo-0"}
