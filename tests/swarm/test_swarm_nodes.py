"""Image nodes on a real two-machine swarm (tests/swarm/cluster.py) through one real
`pier up --runtime swarm`: a node's instances spread over both machines, a placement
constraint holds, a private image is pulled on the worker with the project's registry
secret (and without one the node fails once, with an event naming the machine), and when
the worker machine dies under a paced load through an alias its instances are replaced
on the manager's, no request fails but those in flight to it, and pier's event names the
lost machine; an engine that is no swarm manager is refused with the reason. The
runtime's own behaviour is the runtime contract suite
(tests/runtimes/test_runtime_contract.py, swarm harness).

Reservations are off here (``swarm.reservations``): the default configuration reserves
2 CPUs an instance, and each machine of the test swarm has this host's 2 CPUs.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import docker
import pytest
from tests.conftest import PierProcess, running_pier
from tests.docker.images import build_and_push
from tests.e2e.paced_load import PacedLoad
from tests.e2e.test_registry_credentials import PASSWORD, USER, private_registry, set_secret
from tests.swarm.cluster import SwarmCluster

from pier.domain.errors import InvalidSpec, RuntimeUnavailable
from pier.domain.specs import parse_node_spec
from pier.runtimes import load_runtime

NODE = "spread"
PRIVATE_LABEL = "pier.test.swarm-private"
"""The label of the images this module builds for its private registry."""


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


@pytest.fixture(scope="module")
def private_echo(
    echo: str, swarm_cluster: SwarmCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The echo image in a registry that needs a login, at the same 127.0.0.1 port on
    the host and on both machines (scripts/swarm.sh forward)."""
    try:
        with private_registry(tmp_path_factory.mktemp("swarm-registry")) as port:
            swarm_cluster.forward(port)
            yield push_private(echo, f"127.0.0.1:{port}/pier-test/private:1")
    finally:
        forget_private_images()


def forget_private_images() -> None:
    """Remove from the host's engine the images ``push_private`` built (by their label)."""
    client = docker.from_env()
    try:
        for image in client.images.list(filters={"label": PRIVATE_LABEL}):
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image.id, force=True)
    finally:
        client.close()


def push_private(image: str, ref: str) -> str:
    """An image of its own (``image`` with a label naming ``ref``: no machine has its
    content yet) pushed to the private registry as ``ref``."""
    client = docker.from_env()
    try:
        dockerfile = f"FROM {image}\nLABEL {PRIVATE_LABEL}={ref}\n".encode()
        built, _ = client.images.build(fileobj=io.BytesIO(dockerfile), rm=True)
        built.tag(ref)
        auth = {"username": USER, "password": PASSWORD}
        for line in client.images.push(ref, auth_config=auth, stream=True, decode=True):
            assert "error" not in line, f"push to the private registry failed: {line}"
    finally:
        client.close()
    return ref


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


def test_a_private_image_is_pulled_on_the_worker_with_the_project_secret(
    pier: PierProcess, swarm_cluster: SwarmCluster, private_echo: str
) -> None:
    worker = f"node.hostname=={swarm_cluster.worker_name}"
    # without a registry secret: the manager has the image, the worker cannot pull it
    pinned = pinned_on(swarm_cluster.docker_host, private_echo)
    pier.cli("node", "create", "nocred", "--image", pinned, "--port", "8080",
             "--placement", worker)  # fmt: skip
    failed = pier.wait_for(
        lambda: create_failures(pier, "nocred"), timeout_s=30, what="the create to fail"
    )
    assert len(failed) == 1, failed
    assert swarm_cluster.worker_name in failed[0] and "--registry-secret" in failed[0]
    assert "not retried until the node's spec changes" in failed[0]
    assert pier.node("nocred")["status"] == "Unhealthy" and not pier.instances("nocred")
    pier.cli("node", "delete", "nocred")

    set_secret(pier, "regcred", PASSWORD)
    create(pier, "private", private_echo, "--placement", worker, "--registry-secret",
           "regcred", instances=1)  # fmt: skip

    assert hosts(pier, "private") == [swarm_cluster.worker_address]
    assert pier.node("private")["pinned_image"] == pinned
    assert PASSWORD not in pier.log_path.read_text()
    pier.cli("node", "delete", "private")


def create_failures(pier: PierProcess, name: str) -> list[str]:
    return [e["message"] for e in pier.events(name) if e["kind"] == "instance_create_failed"]


def pinned_on(engine: str, ref: str) -> str:
    """Pull ``ref`` (with the registry's password) on one machine of the test swarm only:
    the image's ``repo@sha256:...`` there."""
    client = docker.DockerClient(base_url=engine)
    try:
        auth = {"username": USER, "password": PASSWORD}
        image = client.images.pull(ref, auth_config=auth)
        return str(image.attrs["RepoDigests"][0])
    finally:
        client.close()


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


def test_an_alias_under_load_loses_only_what_was_in_flight_when_a_machine_dies(
    pier: PierProcess, swarm_cluster: SwarmCluster
) -> None:
    """The node of 4 over both machines, behind an alias, under a paced load through the
    gateway: the worker dies; its instances are replaced on the manager's machine, the
    node goes Unhealthy and back to Healthy, the event names the lost machine, and the
    only failed requests are some of those in flight when it died."""
    manager = swarm_cluster.manager_address
    on_worker = {
        i["id"] for i in pier.instances(NODE)
        if urlsplit(i.get("endpoint") or "").hostname == swarm_cluster.worker_address
    }  # fmt: skip
    assert on_worker
    pier.cli("alias", "create", "steady", "--node", NODE)
    pier.wait_for(lambda: alias_routed(pier, "steady"), what="alias steady to be served")
    try:
        with PacedLoad(pier, "/default/aliases/steady/healthz", rate=RATE) as load:
            load.run_for(LOAD_BEFORE_S)
            died_from = time.monotonic()
            swarm_cluster.kill_worker()
            died_at = time.monotonic()
            statuses = wait_replaced(pier, [manager] * 4)
            load.run_for(LOAD_AFTER_S)
        lost = [e for e in pier.events(NODE) if swarm_cluster.worker_name in e["message"]]
        assert lost and "was lost" in lost[0]["message"]
    finally:
        with contextlib.suppress(Exception):
            swarm_cluster.restore()

    assert "Unhealthy" in statuses and statuses[-1] == "Healthy", statuses
    # in flight when it died: sent before the kill ended, answered after it began (the
    # kill takes seconds on a busy machine). No more failed than those, and the gateway's
    # error for each names one of the worker's instances. (Not "each failure is one of
    # those": a connection to a killed task can still be reset just after the kill ends.)
    in_flight = [a for a in load.answers if a.sent_at <= died_at and a.answered_at >= died_from]
    failed = load.failures()
    assert len(failed) <= len(in_flight), (failed[:5], len(in_flight))
    assert all(any(i in (a.error or "") for i in on_worker) for a in failed), failed[:5]
    assert len(load.sent_after(died_at)) > 0 and pier.serving(NODE)


LOAD_BEFORE_S = 1.0
"""Load through the alias before the worker dies."""
LOAD_AFTER_S = 1.0
"""Load through the alias once the node is Healthy again."""
RATE = 100.0
"""Requests per second through the alias."""


def alias_routed(pier: PierProcess, name: str) -> bool:
    with pier.api() as api:
        return bool(api.get(f"/api/v1/projects/default/aliases/{name}").json()["routed"])


def wait_replaced(pier: PierProcess, expected: list[str], timeout_s: float = 60.0) -> list[str]:
    """Until the node's Healthy instances run at ``expected`` and it is Healthy; the node
    statuses seen on the way, each change once."""
    statuses: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = str(pier.node(NODE)["status"])
        if not statuses or statuses[-1] != status:
            statuses.append(status)
        if status == "Healthy" and hosts(pier, NODE) == expected and "Unhealthy" in statuses:
            return statuses
        time.sleep(0.05)
    raise AssertionError(f"not replaced on {expected} in {timeout_s} s: {statuses}")


async def test_an_engine_that_is_no_swarm_manager_is_refused_with_the_reason() -> None:
    """The machine's main engine, which is in no swarm: only read (`docker info`)."""
    with pytest.raises(RuntimeUnavailable) as refused:
        load_runtime("swarm", docker_host="unix:///var/run/docker.sock")

    assert "is not a swarm manager (swarm: inactive)" in refused.value.message
