"""Path routing, DataSphere-style header routing, aliases, and the gateway's own paths."""

from __future__ import annotations

from gateway_processes import TOKEN, Gateway

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_node_path_is_stripped_and_query_kept(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.post("/default/nodes/echo/v2/models/m/infer?x=1&y=two", json={"a": 1})
    assert response.status_code == 200
    echo = response.json()
    assert echo["target"] == "/v2/models/m/infer?x=1&y=two"
    assert echo["method"] == "POST"
    assert echo["body_bytes"] == len(b'{"a":1}')
    assert response.headers["x-pier-instance"] in {"echo-0", "echo-1"}


def test_node_root_path_becomes_slash(gateway: Gateway) -> None:
    with gateway.client() as client:
        assert client.get("/default/nodes/echo").json()["target"] == "/"
        assert client.get("/default/nodes/echo?q=1").json()["target"] == "/?q=1"


def test_x_node_id_routes_with_the_path_unchanged(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.post("/v2/infer?k=v", headers={"x-node-id": "echo"}, content=b"{}")
    assert response.status_code == 200
    assert response.json()["target"] == "/v2/infer?k=v"


def test_x_folder_id_picks_the_project(gateway: Gateway) -> None:
    with gateway.client() as client:
        by_folder = client.get("/p", headers={"x-node-id": "echo", "x-folder-id": "team"})
        by_project = client.get("/p", headers={"x-node-id": "echo", "x-pier-project": "team"})
    assert by_folder.json()["instance"] == "b"
    assert by_project.json()["instance"] == "b"
    assert by_folder.headers["x-pier-instance"] == "echo-0"


def test_x_node_alias_routes_to_a_node_of_the_alias(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.get("/anything", headers={"x-node-alias": "stable"})
    assert response.status_code == 200
    assert response.json()["target"] == "/anything"


def test_alias_path_sends_traffic_only_to_weighted_nodes(gateway: Gateway) -> None:
    with gateway.client() as client:
        for _ in range(10):
            response = client.post("/default/aliases/stable/predict?z=9", content=b"x")
            assert response.status_code == 200  # "empty" has weight 0 and no instance
            assert response.json()["target"] == "/predict?z=9"


def test_unknown_node_is_404_json_naming_it(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.post("/default/nodes/nope/infer", content=b"{}", headers=AUTH)
    assert response.status_code == 404
    error = response.json()
    assert error["code"] == "not_found"
    assert error["node"] == "nope"
    assert "nope" in error["error"]


def test_unknown_alias_and_header_node_are_404(gateway: Gateway) -> None:
    with gateway.client() as client:
        by_path = client.get("/default/aliases/ghost/x", headers=AUTH)
        by_header = client.get("/x", headers={"x-node-id": "ghost", **AUTH})
    assert by_path.status_code == 404
    assert by_path.json()["alias"] == "ghost"
    assert by_header.status_code == 404
    assert by_header.json()["node"] == "ghost"


def test_unknown_node_without_a_token_is_401_revealing_nothing(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.get("/default/nodes/nope/x")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert "nope" not in response.json()["error"]


def test_path_matching_no_route_is_404(gateway: Gateway) -> None:
    with gateway.client() as client:
        response = client.get("/not/a/route")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_healthz_and_metrics(gateway: Gateway) -> None:
    with gateway.client() as client:
        client.get("/default/nodes/echo/x")
        health = client.get("/healthz")
        metrics = client.get("/metrics")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert metrics.status_code == 200
    text = metrics.text
    assert 'pier_gateway_requests_total{code="2xx",node="echo",project="default"}' in text
    assert "pier_gateway_upstream_latency_seconds_bucket" in text
    assert "pier_gateway_in_flight_requests" in text
