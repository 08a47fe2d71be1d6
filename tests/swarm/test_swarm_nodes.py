"""Image nodes on a real two-machine swarm (tests/swarm/cluster.py) through one real
`pier up --runtime swarm`: a node's instances spread over both machines, a placement
constraint holds, and when the worker machine dies its instances are replaced on the
manager's, with pier's event naming the lost machine; an engine that is no swarm manager
is refused with the reason. The runtime's own behaviour is
the runtime contract suite (tests/runtimes/test_runtime_contract.py, swarm harness).

Reservations are off here (``swarm.reservations``): the default configuration reserves
2 CPUs an instance, and each machine of the test swarm has this host's 2 CPUs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from tests.conftest import PierProcess, running_pier
from tests.docker.images import build_and_push
from tests.swarm.cluster import SwarmCluster

from pier.domain.errors import InvalidSpec, RuntimeUnavailable
from pier.domain.specs import parse_node_spec
from pier.runtimes import load_runtime

NODE = "spread"


@pytest.fixture(scope="module")
def pier(
    swarm_cluster: SwarmCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PierProcess]:
    env = {
        "PIER_RUNTIME": "swarm",
        "PIER_SWARM__DOCKER_HOST": swarm_cluster.docker_host,
        "PIER_SWARM__RESERVATIONS": "false",
        "PIER_CONTROLLER__STOP_GRACE_S": "1",
    }
    with running_pier(tmp_path_factory.mktemp("swarm") / "data", env=env, timeout_s=90) as pier:
        yield pier


@pytest.fixture(scope="module")
def echo() -> str:
    return build_and_push("echo:1")


def create(pier: PierProcess, name: str, image: str, *extra: str, instances: int) -> None:
    pier.cli(
        "node", "create", name, "--image", image, "--port", "8080", "--health", "/healthz",
        "--health-interval", "0.5", "--min", str(instances), *extra, "--wait",
        "--wait-timeout", "60",
    )  # fmt: skip


def hosts(pier: PierProcess, name: str) -> list[str]:
    """The machine address of each Healthy instance's endpoint."""
    return sorted(
        str(urlsplit(i["endpoint"]).hostname)
        for i in pier.instances(name)
        if i["status"] == "Healthy" and i.get("endpoint")
    )


def test_a_node_of_four_spreads_over_both_machines_and_serves(
    pier: PierProcess, swarm_cluster: SwarmCluster, echo: str
) -> None:
    create(pier, NODE, echo, instances=4)

    assert set(hosts(pier, NODE)) == {swarm_cluster.manager_address, swarm_cluster.worker_address}
    assert pier.node(NODE)["runtime"] == "swarm"
    with pier.gateway() as gateway:
        for _ in range(8):
            assert gateway.get(f"/default/nodes/{NODE}/healthz").status_code == 200


def test_a_placement_constraint_holds(
    pier: PierProcess, swarm_cluster: SwarmCluster, echo: str
) -> None:
    constraint = f"node.hostname=={swarm_cluster.worker_name}"
    create(pier, "pinned", echo, "--placement", constraint, instances=2)

    assert hosts(pier, "pinned") == [swarm_cluster.worker_address] * 2
    pier.cli("node", "delete", "pinned")  # its instances would be replaced on no machine


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"placement": ["gpu"]}, "placement.0"),
        ({"runtime": "docker", "placement": ["node.labels.gpu==true"]}, "placement"),
        ({"runtime": "local"}, "runtime"),
    ],
)
def test_a_bad_placement_or_runtime_names_the_field(spec: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidSpec) as refused:
        parse_node_spec({"image": "127.0.0.1:5000/x:1", "port": 8080, **spec})

    assert refused.value.field == field


def test_the_instances_of_a_lost_machine_are_replaced_on_the_other(
    pier: PierProcess, swarm_cluster: SwarmCluster
) -> None:
    manager = swarm_cluster.manager_address
    assert swarm_cluster.worker_address in hosts(pier, NODE)
    try:
        swarm_cluster.kill_worker()

        pier.wait_for(
            lambda: hosts(pier, NODE) == [manager] * 4,
            timeout_s=60, what="4 Healthy instances on the manager's machine",
        )  # fmt: skip
        lost = [e for e in pier.events(NODE) if swarm_cluster.worker_name in e["message"]]
        assert lost and "was lost" in lost[0]["message"]
        assert pier.serving(NODE)
    finally:
        with contextlib.suppress(Exception):
            swarm_cluster.restore()


async def test_an_engine_that_is_no_swarm_manager_is_refused_with_the_reason() -> None:
    """The machine's main engine, which is in no swarm: only read (`docker info`)."""
    with pytest.raises(RuntimeUnavailable) as refused:
        load_runtime("swarm", docker_host="unix:///var/run/docker.sock")

    assert "is not a swarm manager (swarm: inactive)" in refused.value.message
