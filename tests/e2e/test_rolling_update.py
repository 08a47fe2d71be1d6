"""A rolling update under load: every instance is replaced by one of the new spec, old ones
leave the routes and are drained before they stop, and no request fails."""

from __future__ import annotations

from tests.conftest import PierProcess
from tests.e2e.load import Load


def test_an_update_replaces_every_instance_without_failing_a_request(
    pier: PierProcess, echo_image: str
) -> None:
    pier.cli(
        "node", "create", "web", "--image", echo_image, "--port", "8080", "--health", "/healthz",
        "--health-interval", "0.2", "--min", "2", "--env", "GREETING=v1", "--wait",
    )  # fmt: skip
    before = {i["id"] for i in pier.instances("web")}

    def updated() -> bool:
        instances = pier.instances("web")
        return (
            len(instances) == 2
            and all(i["generation"] == 2 and i["status"] == "Healthy" for i in instances)
            and not before & {i["id"] for i in instances}
        )

    with Load(pier, clients=2, path="/default/nodes/web/cgi-bin/slow?s=0.1") as load:
        pier.cli("node", "update", "web", "--env", "GREETING=v2")
        pier.wait_for(updated, timeout_s=60, what="two new instances of generation 2")
    assert load.statuses and set(load.statuses) == {200}, sorted(set(load.statuses))
    with pier.gateway() as gw:
        assert "GREETING=v2" in gw.get("/default/nodes/web/cgi-bin/env").text
