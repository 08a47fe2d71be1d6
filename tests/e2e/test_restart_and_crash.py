"""Crashes and restarts: a killed instance is replaced without refused connections,
a killed `pier up` adopts its instances (and says so), Ctrl-C leaves nothing running."""

from __future__ import annotations

import os
import signal
import threading

import httpx
import psutil

from tests.conftest import IrisModel, PierProcess
from tests.e2e.loop_ticks import wait_for_ticks
from tests.e2e.test_model_node_end_to_end import push_and_create


def test_killed_instance_is_replaced_while_requests_flow(
    pier: PierProcess, iris_onnx: IrisModel
) -> None:
    push_and_create(pier, iris_onnx)
    before = {i["id"] for i in pier.instances("iris")}
    failures: list[str] = []
    ok = 0
    stop = threading.Event()
    body = iris_onnx.infer_request()

    def load() -> None:
        nonlocal ok
        with pier.gateway() as gw:
            while not stop.is_set():
                r = gw.post("/default/nodes/iris/v2/models/iris/infer", json=body)
                if r.status_code == 200:
                    ok += 1
                else:
                    failures.append(r.text)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        pier.wait_for(lambda: ok >= 10, what="requests served before the kill")
        victim = pier.instance_pids()[0]
        os.kill(victim, signal.SIGKILL)

        def replaced() -> bool:
            now = pier.instances("iris")  # one snapshot: the checks must agree with each other
            return (
                bool({i["id"] for i in now} - before)
                and len(now) == 2
                and all(i["status"] == "Healthy" for i in now)
                and pier.node("iris")["status"] == "Healthy"
            )

        pier.wait_for(replaced, what="a replacement instance and a Healthy node")
        served = ok
        pier.wait_for(lambda: ok >= served + 50, what="requests served after the replacement")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert ok > 50
    refused = [f for f in failures if "upstream_connect_failed" in f]
    assert refused == [], refused
    # Only requests in flight on the killed instance may fail, and only as disconnects.
    assert len(failures) <= 2, failures
    with pier.api() as api:
        events = api.get("/api/v1/projects/default/nodes/iris/events").json()["events"]
    assert any(e["kind"] == "instance_failed" for e in events)


def test_sigkill_of_pier_up_then_restart_adopts_instances(
    pier: PierProcess, iris_onnx: IrisModel
) -> None:
    push_and_create(pier, iris_onnx)
    before = sorted(i["id"] for i in pier.instances("iris"))
    pids = sorted(pier.instance_pids())
    killed = pier.proc.pid if pier.proc else None
    pier.stop(signal.SIGKILL)
    # the gateway keeps serving on its last routes while the control plane is down
    with pier.gateway() as gw:
        assert gw.get("/default/nodes/iris/v2/health/ready").status_code == 200
    pier.start()
    assert (
        f"pier did not stop cleanly last time (pid {killed}); "
        "adopted 2 instances of 1 node, removed 0\n"
    ) in pier.output()
    pier.wait_for(
        lambda: pier.node("iris")["status"] == "Healthy", what="node Healthy after restart"
    )
    wait_for_ticks(pier, "--model", "iris")  # a few ticks: nothing may be created or deleted
    assert sorted(i["id"] for i in pier.instances("iris")) == before
    seen = sorted(pier.instance_pids())
    history = [(e["kind"], e["message"]) for e in pier.events("iris")]
    assert seen == pids, f"processes {seen}, not {pids}; events: {history}\n{pier.output()}"
    assert all(psutil.pid_exists(p) for p in pids)


def test_ctrl_c_stops_everything_and_up_restores_nodes(
    pier: PierProcess, iris_onnx: IrisModel
) -> None:
    push_and_create(pier, iris_onnx, instances=1)
    pids = pier.instance_pids()
    gateway_pid = pier.gateway_pid()
    pier.stop(signal.SIGINT)
    for pid in [*pids, gateway_pid]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    pier.start()
    assert "did not stop cleanly" not in pier.output()
    pier.wait_for(lambda: pier.serving("iris"), what="node back after restart")
    with httpx.Client(trust_env=False) as c:
        r = c.get(
            f"{pier.gateway_url}/default/nodes/iris/v2/health/ready",
            headers={"Authorization": f"Bearer {pier.token}"},
        )
    assert r.status_code == 200
