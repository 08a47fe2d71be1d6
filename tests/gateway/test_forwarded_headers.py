"""What the gateway adds to a forwarded request: X-Forwarded-For (the client's address
after any the client sent), X-Forwarded-Proto and X-Request-Id, which also comes back
with the response, the gateway's own error answers included."""

from __future__ import annotations

import pytest
from gateway_processes import Gateway
from raw_http import RawClient


def test_forwarded_headers_and_a_request_id_are_added(gateway: Gateway) -> None:
    with gateway.client() as client:
        first = client.get("/default/nodes/echo/x")
        second = client.get("/default/nodes/echo/x")
    echo = first.json()["headers"]
    assert echo["x-forwarded-for"] == "127.0.0.1"
    assert echo["x-forwarded-proto"] == "http"
    assert echo["x-request-id"] == first.headers["x-request-id"]
    assert second.headers["x-request-id"] not in {"", first.headers["x-request-id"]}


def test_client_forwarded_for_is_appended_to_and_its_proto_replaced(gateway: Gateway) -> None:
    with RawClient(gateway.port) as client:
        client.send(
            b"GET /default/nodes/echo/x HTTP/1.1\r\nhost: x\r\nX-Forwarded-For: 10.0.0.1\r\n"
            b"x-forwarded-for: 10.0.0.2\r\nX-Forwarded-Proto: https\r\n\r\n"
        )
        echo = client.read_response().json()["headers"]
    assert echo["x-forwarded-for"] == "10.0.0.1, 10.0.0.2, 127.0.0.1"
    assert echo["x-forwarded-proto"] == "http"


def test_valid_request_id_is_kept_both_ways(gateway: Gateway) -> None:
    given = "3f2a-req:42.ABC_9/x+y="
    with gateway.client() as client:
        response = client.get("/default/nodes/echo/x", headers={"X-Request-Id": given})
    assert response.headers["x-request-id"] == given
    assert response.json()["headers"]["x-request-id"] == given


@pytest.mark.parametrize("given", ["has space", "x" * 201, 'quote"d', "semi;colon"])
def test_invalid_request_id_is_replaced(gateway: Gateway, given: str) -> None:
    with gateway.client() as client:
        response = client.get("/default/nodes/echo/x", headers={"X-Request-Id": given})
    made = response.headers["x-request-id"]
    assert made not in {"", given}
    assert response.json()["headers"]["x-request-id"] == made


def test_gateway_errors_carry_the_request_id(gateway: Gateway) -> None:
    with gateway.client() as client:
        no_route = client.get("/not/a/route", headers={"x-request-id": "r1"})
        too_large = client.post("/default/nodes/small/x", content=b"x" * 2000)
        timed_out = client.get("/default/nodes/slow/sleep?s=3", headers={"x-request-id": "r3"})
    assert (no_route.status_code, no_route.headers["x-request-id"]) == (404, "r1")
    assert too_large.status_code == 413
    assert too_large.headers["x-request-id"]
    assert (timed_out.status_code, timed_out.headers["x-request-id"]) == (504, "r3")


def test_instance_request_id_is_replaced_by_the_gateways(gateway: Gateway) -> None:
    with RawClient(gateway.port) as client:
        client.send(
            b"GET /default/nodes/echo/header?name=X-Request-Id&value=theirs HTTP/1.1\r\n"
            b"host: x\r\nx-request-id: ours\r\n\r\n"
        )
        response = client.read_response()
    assert response.status == 200
    assert response.headers["x-request-id"] == ["ours"]
