"""Private routes need a bearer token whose SHA-256 is in the route table."""

from __future__ import annotations

import pytest
from gateway_processes import TOKEN, Gateway


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic abc", "Bearer"])
def test_private_node_without_valid_token_is_401(gateway: Gateway, authorization: str) -> None:
    headers = {"authorization": authorization} if authorization else {}
    with gateway.client() as client:
        response = client.post("/default/nodes/private/infer", content=b"{}", headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
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
    assert refused.json()["error"]["alias"] == "secured"
    assert allowed.status_code == 200
