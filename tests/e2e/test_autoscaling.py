"""Autoscaling on a real gateway and Docker engine: a node grows with the requests in
flight, up to --max, and shrinks back to --min after the load stops, without failing a
request on the way."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import PierProcess
from tests.e2e.load import Load

FAST_AUTOSCALER = {
    "PIER_CONTROLLER__AUTOSCALE_WINDOW_S": "2",
    "PIER_CONTROLLER__SCALE_DOWN_DELAY_S": "4",
}


def instance_count(pier: PierProcess, name: str) -> Callable[[], tuple[int, int]]:
    def counts() -> tuple[int, int]:
        node = pier.node(name)
        return node["instances"]["healthy"], node["instances"]["target"]

    return counts


def test_a_node_scales_with_its_load_and_back(
    pier_factory: Callable[..., PierProcess], echo_image: str
) -> None:
    pier = pier_factory(env=FAST_AUTOSCALER)
    pier.cli(
        "node", "create", "web", "--image", echo_image, "--port", "8080", "--health", "/healthz",
        "--health-interval", "0.5", "--min", "1", "--max", "3", "--target-in-flight", "1",
        "--wait",
    )  # fmt: skip
    counts = instance_count(pier, "web")
    assert counts() == (1, 1)

    with Load(pier, clients=4, path="/default/nodes/web/cgi-bin/slow?s=0.3") as load:
        pier.wait_for(lambda: counts() == (3, 3), timeout_s=40, what="3 Healthy instances")
    assert load.statuses and set(load.statuses) == {200}

    # one client keeps going while the node shrinks: no request fails on the way down
    with Load(pier, clients=1, path="/default/nodes/web/cgi-bin/slow?s=0.05") as light:
        pier.wait_for(lambda: counts() == (1, 1), timeout_s=40, what="back to 1 instance")
        pier.wait_for(lambda: len(pier.instances("web")) == 1, what="the surplus ones removed")
        served = len(light.statuses)
        pier.wait_for(lambda: len(light.statuses) >= served + 5, what="requests after that")
    assert light.statuses and set(light.statuses) == {200}, sorted(set(light.statuses))
    assert len(pier.instances("web")) == 1

    scaled = [e["message"] for e in pier.events("web") if e["kind"] == "node_scaled"]
    assert any("to 3 instances" in m and "requests in flight" in m for m in scaled), scaled
    assert any("to 1 instances" in m for m in scaled), scaled
    # a busy CI machine may fail two of the 0.5 s health checks in a row as the surplus
    # containers go: the instance is then briefly Unhealthy, and Healthy again
    pier.wait_for(lambda: "1/1 Healthy" in pier.cli("node", "get", "web").stdout,
                  what="node get showing 1/1 Healthy")  # fmt: skip
    assert "1 per instance" in pier.cli("node", "get", "web").stdout


def test_a_node_scales_from_zero_on_its_first_request_and_back_to_zero(
    pier_factory: Callable[..., PierProcess], echo_image: str
) -> None:
    pier = pier_factory(env=FAST_AUTOSCALER)
    pier.cli(
        "node", "create", "web", "--image", echo_image, "--port", "8080", "--health", "/healthz",
        "--health-interval", "0.2", "--min", "0", "--max", "2", "--timeout", "30", "--wait",
    )  # fmt: skip
    assert pier.instances("web") == []
    assert pier.node("web")["routed"]  # --wait returns once the gateway has the route

    with pier.gateway() as gw:
        first = gw.get("/default/nodes/web/cgi-bin/echo/hello", timeout=40)
    assert first.status_code == 200, first.text  # waited while an instance started
    assert len(pier.instances("web")) == 1

    pier.wait_for(lambda: pier.instances("web") == [], timeout_s=40, what="scaled to zero")
    scaled = [e["message"] for e in pier.events("web") if e["kind"] == "node_scaled"]
    assert any("from 0 to 1" in m for m in scaled) and any("from 1 to 0" in m for m in scaled)
