"""Changing a node: a rolling update under load replaces every instance by one of the new
spec, old ones leave the routes and are drained before they stop, and no request fails;
scaling it or changing its timeout keeps the instances it has."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import PierProcess
from tests.e2e.load import Load


def create_web(pier: PierProcess, echo_image: str) -> set[str]:
    pier.cli(
        "node", "create", "web", "--image", echo_image, "--port", "8080", "--health", "/healthz",
        "--health-interval", "0.2", "--min", "2", "--env", "GREETING=v1", "--wait",
    )  # fmt: skip
    return {i["id"] for i in pier.instances("web")}


@pytest.mark.parametrize("gateway_workers", [1, 2])
def test_an_update_replaces_every_instance_without_failing_a_request(
    pier_factory: Callable[..., PierProcess], echo_image: str, gateway_workers: int
) -> None:
    # With two gateway workers, an old instance may stop only once neither has a request
    # in flight to it.
    pier = pier_factory(env={"PIER_GATEWAY__WORKERS": str(gateway_workers)})
    before = create_web(pier, echo_image)
    path = "/default/nodes/web/cgi-bin/slow?s=0.1"
    with Load(pier, clients=2 * gateway_workers, path=path, new_connections=True) as load:
        out = pier.cli("node", "update", "web", "--env", "GREETING=v2", "--wait").stdout
        # --wait returns once the rollout is done: only instances of the new spec are left
        instances = pier.instances("web")
        assert len(instances) == 2 and not before & {i["id"] for i in instances}
        assert all(i["generation"] == 2 and i["status"] == "Healthy" for i in instances)
    assert "replacing its instances one by one" in out
    assert load.statuses and set(load.statuses) == {200}, sorted(set(load.statuses))
    with pier.gateway() as gw:
        assert "GREETING=v2" in gw.get("/default/nodes/web/cgi-bin/env").text


def test_scaling_a_node_or_changing_its_timeout_keeps_its_instances(
    pier: PierProcess, echo_image: str
) -> None:
    before = create_web(pier, echo_image)
    out = pier.cli(
        "node", "update", "web", "--min", "3", "--max", "3", "--timeout", "5", "--wait"
    ).stdout
    assert "applied to the running instances" in out
    instances = pier.instances("web")
    assert len(instances) == 3 and before < {i["id"] for i in instances}  # one added
    assert {i["generation"] for i in instances} == {1}
    assert pier.node("web")["spec"]["timeout_s"] == 5
    with pier.gateway() as gw:  # the new timeout is the gateway's at once
        slow = gw.get("/default/nodes/web/cgi-bin/slow?s=8")
    assert slow.status_code == 504, slow.text
