"""How the gateway treats its connections to instances: idle timeout, CGI-style answers."""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway_processes import Gateway, Upstream, node, table


def test_pooled_connection_is_reused_within_the_idle_timeout(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    gw = gateway_factory(table(node("fast", upstreams["a"].endpoint)))
    with gw.client() as client:
        first = client.get("/default/nodes/fast/x").json()["peer_port"]
        time.sleep(0.5)
        second = client.get("/default/nodes/fast/x").json()["peer_port"]
    assert first == second


def test_node_idle_timeout_closes_pooled_connections(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    gw = gateway_factory(table(node("idle", upstreams["a"].endpoint, idle_timeout_s=0.2)))
    with gw.client() as client:
        first = client.get("/default/nodes/idle/x").json()["peer_port"]
        time.sleep(0.5)
        second = client.get("/default/nodes/idle/x").json()["peer_port"]
    assert first != second


def test_cgi_style_answer_is_relayed_until_the_instance_closes(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    gw = gateway_factory(table(node("cgi", upstreams["a"].endpoint)))
    with gw.client() as client:
        response = client.get("/default/nodes/cgi/cgi")
    assert response.status_code == 200
    assert response.text == "cgi says hi\n"
    assert response.headers["content-type"] == "text/plain"
