"""Aliases on a real `pier up` with model nodes: switching an alias from one node to
another under constant load, then deleting the old node, fails no request and, once the
switch is served, every answer comes from the new node (with one and with two gateway
workers); shares hold; a node that is not Healthy gets no alias traffic; tritonclient
works against an alias URL as against a node URL.

One `pier up` per gateway-worker count serves the whole module (nodes are named per test).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton

from tests.conftest import IrisModel, PierProcess, running_pier
from tests.e2e.paced_load import PacedLoad
from tests.e2e.test_sdk_errors import NO_DOCKER

LOAD_S = 20.0
"""How long the load runs through a switch and a deletion."""
RATE = 200.0
"""Requests per second asked of the load through a switch."""
MIN_RATE = 100.0
"""The least rate the load must have held for its zero failures to mean something (the
machine is shared: the rate asked is not asserted)."""
READY = "/v2/health/ready"


def started(tmp_path_factory: pytest.TempPathFactory, workers: int) -> Any:
    env = {**NO_DOCKER, "PIER_GATEWAY__WORKERS": str(workers)}
    data_dir = tmp_path_factory.mktemp(f"aliases-{workers}") / "data"
    return running_pier(data_dir, env=env, timeout_s=120)  # a shared, busy machine


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory, iris_onnx: IrisModel) -> Iterator[PierProcess]:
    with started(tmp_path_factory, 1) as pier:
        pier.cli("model", "push", str(iris_onnx.path), "--name", "iris")
        yield pier


@pytest.fixture(scope="module")
def up_two_workers(
    tmp_path_factory: pytest.TempPathFactory, iris_onnx: IrisModel
) -> Iterator[PierProcess]:
    with started(tmp_path_factory, 2) as pier:
        pier.cli("model", "push", str(iris_onnx.path), "--name", "iris")
        yield pier


def model_node(pier: PierProcess, name: str, *extra: str, wait: bool = True) -> set[str]:
    """A node serving iris; the ids of its instances."""
    args = ["node", "create", name, "--model", "iris", "--health-interval", "0.2", *extra]
    pier.cli(*args, *(["--wait"] if wait else []))
    return {i["id"] for i in pier.instances(name)}


def alias(pier: PierProcess, name: str) -> dict[str, Any]:
    with pier.api() as api:
        view: dict[str, Any] = api.get(f"/api/v1/projects/default/aliases/{name}").json()
        return view


def wait_routed(pier: PierProcess, name: str) -> float:
    """When every gateway worker serves the alias as stored (time.monotonic())."""
    pier.wait_for(lambda: alias(pier, name)["routed"], what=f"alias {name} to be served")
    return time.monotonic()


@pytest.mark.parametrize("workers", [1, 2])
def test_switching_an_alias_and_deleting_the_old_node_fails_no_request(
    request: pytest.FixtureRequest, workers: int
) -> None:
    pier: PierProcess = request.getfixturevalue("up" if workers == 1 else "up_two_workers")
    old_ids, new_ids = model_node(pier, "swap-v1"), model_node(pier, "swap-v2")
    pier.cli("alias", "create", "swap", "--node", "swap-v1")
    wait_routed(pier, "swap")
    began = time.monotonic()
    with PacedLoad(pier, f"/default/aliases/swap{READY}", rate=RATE) as load:
        load.run_for(4)
        asked = time.monotonic()
        pier.cli("alias", "set", "swap", "--node", "swap-v2")
        switched = wait_routed(pier, "swap")
        load.run_for(3)
        refused = pier.cli("node", "delete", "swap-v2", check=False)
        pier.cli("node", "delete", "swap-v1", "--wait")
        load.run_for(max(1.0, LOAD_S - (time.monotonic() - began)))
    rate = load.rate_achieved()
    print(f"load held {rate:.0f} req/s of {RATE:.0f} asked, {len(load.answers)} answers")
    assert load.failures() == [], load.failures()[:5]
    assert rate >= MIN_RATE, f"the load held only {rate:.0f} req/s"
    assert [a for a in load.answers if a.sent_at < asked and a.instance not in old_ids] == []
    after = load.sent_after(switched)
    assert after, "no request was sent after the switch"
    assert {a.instance for a in after} <= new_ids
    assert {a.node for a in after} <= {"swap-v2", None}  # x-pier-node, once the gateway sends it
    assert refused.returncode == 1 and "alias 'swap'" in refused.stderr


def test_shares_hold_and_a_node_that_is_not_healthy_gets_nothing(up: PierProcess) -> None:
    a_ids, b_ids = model_node(up, "share-a"), model_node(up, "share-b")
    up.cli("alias", "create", "split", "--node", "share-a=80", "--node", "share-b")
    assert [(n["node"], n["share"]) for n in alias(up, "split")["nodes"]] == [
        ("share-a", 80),
        ("share-b", 20),
    ]
    wait_routed(up, "split")
    with PacedLoad(up, f"/default/aliases/split{READY}", rate=400) as load:
        up.wait_for(lambda: len(load.answers) >= 2000, what="2000 answers", timeout_s=120)
    answers = load.answers[:2000]
    assert [a for a in answers if a.status != 200] == []
    counts = Counter(
        "a" if a.instance in a_ids else "b" if a.instance in b_ids else "?" for a in answers
    )
    assert counts["?"] == 0
    assert 75 <= 100 * counts["a"] / 2000 <= 85, counts

    model_node(up, "never-ready", "--health", "/v2/models/missing/ready", wait=False)
    up.cli("alias", "set", "split", "--node", "share-a=50", "--node", "never-ready=50")
    wait_routed(up, "split")
    view = {n["node"]: n for n in alias(up, "split")["nodes"]}
    assert (view["share-a"]["ready"], view["share-a"]["effective_share"]) == (True, 100)
    assert view["never-ready"]["ready"] is False and view["never-ready"]["effective_share"] == 0
    assert "below its minimum" in view["never-ready"]["why_not_ready"]
    assert "below its minimum" in up.cli("alias", "get", "split").stdout
    with up.gateway() as gw:
        seen = {
            gw.get(f"/default/aliases/split{READY}").headers["x-pier-instance"] for _ in range(100)
        }
    assert seen <= a_ids


def test_tritonclient_works_against_an_alias_url(up: PierProcess, iris_onnx: IrisModel) -> None:
    model_node(up, "triton-a")
    up.cli("alias", "create", "triton", "--node", "triton-a")
    wait_routed(up, "triton")
    auth = {"Authorization": f"Bearer {up.token}"}
    by_path = triton.InferenceServerClient(f"127.0.0.1:{up.gateway_port}/default/aliases/triton")
    by_header = triton.InferenceServerClient(f"127.0.0.1:{up.gateway_port}")
    try:
        assert by_path.is_model_ready("iris", headers=auth)
        for client, headers in ((by_path, auth), (by_header, {**auth, "x-node-alias": "triton"})):
            inp = triton.InferInput("X", list(iris_onnx.features.shape), "FP32")
            inp.set_data_from_numpy(iris_onnx.features)
            result = client.infer("iris", [inp], headers=headers)
            np.testing.assert_array_equal(result.as_numpy("label"), iris_onnx.labels)
    finally:
        by_path.close()
        by_header.close()


def test_the_cli_manages_an_alias_and_names_the_flag_in_errors(up: PierProcess) -> None:
    model_node(up, "cli-a", "--min", "0", wait=False)
    model_node(up, "cli-b", "--min", "0", wait=False)
    bad = up.cli("alias", "create", "web", "--node", "cli-a=30", "--node", "cli-b=30", check=False)
    assert bad.returncode == 1 and "--node: the shares sum to 60" in bad.stderr
    unknown = up.cli("alias", "create", "web", "--node", "cli-c", check=False)
    assert "--node: no node 'cli-c'" in unknown.stderr
    created = up.cli(
        "alias", "create", "web", "--node", "cli-a=90", "--node", "cli-b", "--metadata",
        "owner=ml", "--public", "--mirror", "cli-b=5", "--sticky-header", "X-Session",
        "--route", "x-tester=yes:cli-b",
    ).stdout  # fmt: skip
    assert "alias web created: cli-a=90, cli-b=10" in created
    got = up.cli_json("alias", "get", "web")
    spec = got["spec"]
    assert (spec["access"], spec["metadata"], spec["sticky_header"]) == (
        "public",
        {"owner": "ml"},
        "x-session",
    )
    assert spec["mirrors"] == [{"node": "cli-b", "percent": 5.0}]
    assert spec["header_routes"] == [{"header": "x-tester", "value": "yes", "node": "cli-b"}]
    up.cli("alias", "set", "web", "--node", "cli-b", "--metadata", "team=x", "--no-mirrors")
    got = up.cli_json("alias", "get", "web")
    assert [(n["node"], n["share"]) for n in got["nodes"]] == [("cli-b", 100)]
    assert got["spec"]["metadata"] == {"owner": "ml", "team": "x"}
    assert got["spec"]["mirrors"] == [] and got["spec"]["header_routes"] != []
    assert "web" in up.cli("alias", "list").stdout
    up.cli("alias", "delete", "web")
    assert "web" not in [a["name"] for a in up.cli_json("alias", "list")["aliases"]]
