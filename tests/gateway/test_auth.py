"""Private routes need a bearer token whose SHA-256 is in the route table."""

from __future__ import annotations

import httpx
import pytest
from gateway_processes import TOKEN, Gateway

from pier.controller.gateway_view import GatewayView
from pier.domain.names import NodeKey


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic abc", "Bearer"])
def test_private_node_without_valid_token_is_401(gateway: Gateway, authorization: str) -> None:
    headers = {"authorization": authorization} if authorization else {}
    with gateway.client() as client:
        response = client.post("/default/nodes/private/infer", content=b"{}", headers=headers)
    assert response.status_code == 401
    error = response.json()
    assert error["code"] == "unauthorized"
    assert error["node"] == "private"


def test_private_node_with_token_is_forwarded_without_it(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.post(
            "/default/nodes/private/infer",
            content=b"{}",
            headers={"authorization": f"Bearer {TOKEN}"},
        )
    assert response.status_code == 200
    assert "authorization" not in response.json()["headers"]


def test_public_node_needs_no_token_and_never_sees_one(gateway: Gateway) -> None:
    with gateway.client() as client:
        plain = client.get("/default/nodes/echo/x")
        with_token = client.get("/default/nodes/echo/x", headers={"authorization": "Bearer t"})
    assert plain.status_code == 200
    assert "authorization" not in with_token.json()["headers"]


def test_private_alias_needs_a_token(gateway: Gateway) -> None:
    with gateway.client() as client:
        refused = client.get("/default/aliases/secured/x")
        allowed = client.get(
            "/default/aliases/secured/x", headers={"authorization": f"Bearer {TOKEN}"}
        )
    assert refused.status_code == 401
    assert refused.json()["alias"] == "secured"
    assert allowed.status_code == 200


def test_metrics_name_private_nodes_only_to_callers_with_a_valid_token(gateway: Gateway) -> None:
    with gateway.client() as client:
        client.post(  # the private node has figures to show
            "/default/nodes/private/infer", headers={"authorization": f"Bearer {TOKEN}"}
        )
        anonymous = client.get("/metrics")
        wrong = client.get("/metrics", headers={"authorization": "Bearer wrong"})
        admin = client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    for refused in (anonymous, wrong):
        assert refused.status_code == 200
        assert 'node="echo"' in refused.text  # public nodes stay open to any scraper
        assert 'node="private"' not in refused.text
    assert 'node="private"' in admin.text


async def test_the_controller_reads_the_load_of_private_nodes_with_its_token(
    gateway: Gateway,
) -> None:
    private = NodeKey.parse("default/private")
    async with httpx.AsyncClient(timeout=10) as client:
        admin = GatewayView.over_http(gateway.url, client, token=TOKEN)
        assert private in (await admin.load() or {})
        assert private not in (await GatewayView.over_http(gateway.url, client).load() or {})


def test_healthz_lists_draining_instances_only_to_callers_with_a_valid_token(
    gateway: Gateway,
) -> None:
    """Instance ids name their node: no list of them for callers without a token."""
    with gateway.client() as client:
        anonymous = client.get("/healthz").json()
        admin = client.get("/healthz", headers={"authorization": f"Bearer {TOKEN}"}).json()
    assert "draining" not in anonymous
    assert admin["draining"] == {}
    assert anonymous["routes_version"] == admin["routes_version"]
