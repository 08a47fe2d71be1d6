"""`pier node suspend` drains and stops a node's instances and keeps it so across a
restart of `pier up`; the gateway answers 503 naming it; `pier node resume` brings it
back to its minimum, Healthy and serving."""

from __future__ import annotations

import json
import signal

from tests.conftest import IrisModel, PierProcess
from tests.e2e.loop_ticks import wait_for_ticks
from tests.e2e.test_model_node_end_to_end import push_and_create

READY = "/default/nodes/iris/v2/health/ready"


def answers_suspended(pier: PierProcess) -> bool:
    with pier.gateway() as gw:
        response = gw.get(READY)
    if response.status_code != 503:
        return False
    error = response.json()
    return bool(error["code"] == "node_suspended" and error["node"] == "iris")


def test_suspend_stops_the_node_across_a_restart_and_resume_brings_it_back(
    pier: PierProcess, iris_onnx: IrisModel
) -> None:
    push_and_create(pier, iris_onnx, instances=1)
    suspended = json.loads(pier.cli("node", "suspend", "iris", "--wait", "--output", "json").stdout)
    assert suspended["status"] == "Suspended" and suspended["instances"]["total"] == 0
    assert pier.instances("iris") == [] and pier.instance_pids() == []
    pier.wait_for(lambda: answers_suspended(pier), what="the gateway to say it is suspended")
    assert pier.cli_json("node", "suspend", "iris")["status"] == "Suspended"  # idempotent
    assert [e["kind"] for e in pier.events("iris")].count("node_suspended") == 1

    pier.stop(signal.SIGINT)
    pier.start(timeout_s=120)  # a loaded machine can take a while
    wait_for_ticks(pier, "--model", "iris")  # the loop reconciled it: nothing may start
    assert pier.node("iris")["status"] == "Suspended"
    assert pier.instances("iris") == [] and pier.instance_pids() == []
    assert answers_suspended(pier)

    listed = pier.cli("node", "list").stdout
    assert "Suspended" in listed
    pier.cli("node", "resume", "iris", "--wait")
    assert pier.serving("iris")
    with pier.gateway() as gw:
        response = gw.post(
            "/default/nodes/iris/v2/models/iris/infer", json=iris_onnx.infer_request()
        )
    assert response.status_code == 200
    kinds = [e["kind"] for e in pier.events("iris")]
    assert kinds.count("node_resumed") == 1 and kinds[-1] != "node_suspended"
