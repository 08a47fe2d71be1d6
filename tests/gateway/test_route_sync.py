"""Route updates: from the routes file, or long-polled from the control plane, and kept
when the control plane is away."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gateway_processes import (
    TOKEN,
    FakeControlPlane,
    Gateway,
    Upstream,
    free_port,
    node,
    table,
    wait_until,
    write_routes,
)

from pier.domain.routes import RouteTable

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_routes_file_changes_are_picked_up(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    own = gateway_factory(table(node("first", upstreams["a"].endpoint)))
    with own.client() as client:
        assert client.get("/default/nodes/second/x", headers=AUTH).status_code == 404
        write_routes(own.routes_file, table(node("second", upstreams["b"].endpoint), version=2))
        wait_until(lambda: own.routes_version() == 2, what="routes version 2")
        response = client.get("/default/nodes/second/x")
        assert response.status_code == 200
        assert response.json()["instance"] == "b"
        assert client.get("/default/nodes/first/x", headers=AUTH).status_code == 404


def test_unreachable_control_plane_leaves_the_routes_file_in_charge(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    own = gateway_factory(
        table(node("kept", upstreams["a"].endpoint), version=7),
        "--control-url",
        f"http://127.0.0.1:{free_port()}",
    )
    with own.client() as client:
        for _ in range(3):
            assert client.get("/default/nodes/kept/x").status_code == 200
    assert own.routes_version() == 7


def test_fake_control_plane_routes_reach_the_gateway_and_the_routes_file(
    gateway_factory: Callable[..., Gateway],
    upstreams: dict[str, Upstream],
    control_plane: FakeControlPlane,
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "admin.token"
    token_file.write_text(TOKEN + "\n")
    control_plane.publish(table(node("one", upstreams["a"].endpoint), version=1))
    own = gateway_factory(
        None,
        "--control-url",
        f"http://127.0.0.1:{control_plane.port}",
        "--token-file",
        str(token_file),
    )
    wait_until(lambda: own.routes_version() == 1, what="routes version 1")
    control_plane.publish(table(node("two", upstreams["b"].endpoint), version=2))
    wait_until(lambda: own.routes_version() == 2, what="routes version 2")
    with own.client() as client:
        assert client.get("/default/nodes/two/x").json()["instance"] == "b"
    persisted = RouteTable.model_validate_json(own.routes_file.read_bytes())
    assert persisted.version == 2
    assert f"Bearer {TOKEN}" in control_plane.authorizations


def test_restarted_gateway_serves_persisted_routes_while_control_plane_is_down(
    gateway_factory: Callable[..., Gateway],
    upstreams: dict[str, Upstream],
    control_plane: FakeControlPlane,
) -> None:
    control_plane.publish(table(node("saved", upstreams["a"].endpoint), version=3))
    first = gateway_factory(None, "--control-url", f"http://127.0.0.1:{control_plane.port}")
    wait_until(lambda: first.routes_version() == 3, what="routes version 3")
    first.process.terminate()
    first.process.wait(timeout=5)
    control_plane.stop()
    second = gateway_factory(
        None,
        "--control-url",
        f"http://127.0.0.1:{control_plane.port}",
        routes_file=first.routes_file,
    )
    with second.client() as client:
        assert client.get("/default/nodes/saved/x").status_code == 200
