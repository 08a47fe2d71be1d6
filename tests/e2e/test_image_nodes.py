"""Image nodes on a real Docker engine: a busybox httpd image from the local registry."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from datetime import datetime

import docker
import httpx
import pytest

from tests.conftest import PierProcess
from tests.e2e.loop_ticks import wait_for_ticks


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


def containers(pier: PierProcess, engine: docker.DockerClient, name: str = "web") -> list:
    return engine.containers.list(all=True, filters={"label": pier.container_labels(name)})


def create_web(pier: PierProcess, image: str, *extra: str, instances_min: int = 2) -> None:
    pier.cli(
        "node",
        "create",
        "web",
        "--image",
        image,
        "--port",
        "8080",
        "--health",
        "/healthz",
        "--min",
        str(instances_min),
        "--max",
        "4",
        "--timeout",
        "30",
        "--env",
        "GREETING=hi",
        "--metrics",
        "/cgi-bin/metrics",
        "--health-interval",
        "0.5",
        *extra,
        "--wait",
    )


def test_image_node_serves_through_the_gateway(
    pier: PierProcess, echo_image: str, engine: docker.DockerClient
) -> None:
    create_web(pier, echo_image, "--secret-env", "API_KEY=s3cret-value")
    state = pier.node("web")
    assert state["status"] == "Healthy" and state["routed"]
    assert "@sha256:" in state["pinned_image"]
    with pier.gateway() as gw:
        by_path = gw.post("/default/nodes/web/cgi-bin/echo/hello?x=1", content=b"ping")
        by_header = gw.get("/cgi-bin/echo/there", headers={"x-node-id": "web"})
        env = gw.get("/default/nodes/web/cgi-bin/env").text
    assert by_path.status_code == 200, by_path.text
    echoed = json.loads(by_path.text)
    assert (echoed["path_info"], echoed["query"], echoed["body"]) == ("/hello", "x=1", "ping")
    assert json.loads(by_header.text)["path_info"] == "/there"
    assert "GREETING=hi" in env and "API_KEY=s3cret-value" in env

    # every instance runs the pinned digest, with the configuration's limits
    running = containers(pier, engine)
    assert len(running) == 2
    for container in running:
        host = container.attrs["HostConfig"]
        assert host["NanoCpus"] == 2 * 10**9
        assert host["Memory"] == 8 * 2**30
        assert container.attrs["Config"]["Image"] == state["pinned_image"]
        assert all(
            b[0]["HostIp"] == "127.0.0.1"
            for b in container.attrs["NetworkSettings"]["Ports"].values()
            if b
        )

    logs = pier.cli("node", "logs", "web").stdout
    assert "echo: POST" in logs
    with pier.api() as api:
        metrics = api.get("/api/v1/projects/default/nodes/web/metrics").text
    assert 'node="web"' in metrics and "testimage_up" in metrics
    ids = {i["id"] for i in pier.instances("web")}
    assert all(f'instance="{i}"' in metrics for i in ids)
    with pier.api() as api:
        stats = api.get("/api/v1/projects/default/nodes/web/stats").json()["instances"]
    assert {s["id"] for s in stats} == ids
    assert all(s["memory_bytes"] > 0 for s in stats)

    # the secret value never comes back from the API, the CLI or pier's own log
    with pier.api() as api:
        shown = [
            api.get(p).text
            for p in (
                "/api/v1/projects/default/nodes/web",
                "/api/v1/projects/default/nodes",
                "/api/v1/projects/default/nodes/web/instances",
                "/api/v1/projects/default/nodes/web/events",
            )
        ]
    shown.append(pier.cli("node", "get", "web", "--output", "json").stdout)
    shown.append(pier.log_path.read_text())
    assert not [text for text in shown if "s3cret-value" in text]


def test_failing_health_check_takes_instance_out_and_replaces_it(
    pier: PierProcess, echo_image: str
) -> None:
    create_web(
        pier, echo_image, "--unhealthy-threshold", "2", "--health-grace", "4", instances_min=1
    )
    [first] = pier.instances("web")
    with pier.gateway() as gw:
        assert gw.get("/default/nodes/web/cgi-bin/set-health?fail").status_code == 200
        pier.wait_for(
            lambda: [i["status"] for i in pier.instances("web")] == ["Unhealthy"],
            what="instance Unhealthy",
            timeout_s=30,
        )
        # out of balancing as soon as the gateway has the controller's next routes
        answers: list[str] = []

        def unrouted() -> httpx.Response | None:
            r = gw.get("/default/nodes/web/cgi-bin/echo")
            answers[:] = [f"{r.status_code} {r.text[:200]!r}", *answers[:1]]
            return r if r.status_code == 503 else None

        try:  # within a second alone; over 10 s once in a whole run
            out = pier.wait_for(unrouted, what="the gateway answering 503", timeout_s=30)
        except AssertionError as exc:
            now = [(i["id"], i["status"]) for i in pier.instances("web")]
            raise AssertionError(f"{exc}\nlast answers: {answers}; instances: {now}") from None
        assert out.json()["node"] == "web"
    pier.wait_for(
        lambda: (
            [(i["id"] != first["id"], i["status"]) for i in pier.instances("web")]
            == [(True, "Healthy")]
        ),
        what="replacement",
        timeout_s=60,
    )
    assert any(e["kind"] == "instance_failed" for e in pier.events("web"))


def test_missing_image_is_a_clear_event_without_a_tight_loop(
    pier: PierProcess, echo_image: str
) -> None:
    missing = echo_image.rsplit("/", 1)[0] + "/does-not-exist:1"
    result = pier.cli(
        "node",
        "create",
        "web",
        "--image",
        missing,
        "--port",
        "8080",
        "--wait",
        "--wait-timeout",
        "60",
        check=False,
    )
    assert result.returncode == 1
    assert "does-not-exist" in result.stderr
    # --wait gave up once the node was failing: three pulls failed by then. Each says when
    # the next one comes, and none came sooner: the delays double, there is no tight loop.
    failures = [e for e in pier.events("web") if e["kind"] == "image_pull_failed"]
    assert failures, pier.events("web")
    delays = [float(re.findall(r"next try in ([\d.]+) s", e["message"])[0]) for e in failures]
    assert delays[:3] == [1.0, 2.0, 4.0], delays
    times = [datetime.fromisoformat(e["time"]) for e in failures]
    for previous, later, delay_s in zip(times, times[1:], delays, strict=False):
        assert (later - previous).total_seconds() >= delay_s * 0.9, (times, delays)
    assert "manifest unknown" in failures[0]["message"] or "not found" in failures[0]["message"]
    assert len(failures) <= 6, "pulls must back off exponentially"
    assert pier.node("web")["status"] == "Unhealthy"
    assert pier.instances("web") == []


def test_restart_adopts_containers_and_replaces_one_removed_out_of_band(
    pier: PierProcess, echo_image: str, engine: docker.DockerClient
) -> None:
    create_web(pier, echo_image)
    before = sorted(i["id"] for i in pier.instances("web"))
    container_ids = sorted(c.id for c in containers(pier, engine))
    pier.stop(signal.SIGKILL)
    pier.start()
    pier.wait_for(lambda: pier.node("web")["status"] == "Healthy", what="Healthy after restart")
    wait_for_ticks(pier, "--image", echo_image, "--port", "8080")  # a few ticks, then:
    assert sorted(i["id"] for i in pier.instances("web")) == before
    assert sorted(c.id for c in containers(pier, engine)) == container_ids

    engine.containers.get(container_ids[0]).remove(force=True)

    def replaced() -> bool:
        now = pier.instances("web")  # one snapshot: the checks must agree with each other
        ids = {i["id"] for i in now}
        return (
            len(now) == 2 and bool(set(before) - ids) and all(i["status"] == "Healthy" for i in now)
        )

    pier.wait_for(replaced, what="the removed container replaced", timeout_s=60)
    assert len(containers(pier, engine)) == 2


def test_image_node_stops_with_pier(
    pier: PierProcess, echo_image: str, engine: docker.DockerClient
) -> None:
    create_web(pier, echo_image, instances_min=1)
    assert len(containers(pier, engine)) == 1
    pier.stop(signal.SIGINT)
    assert containers(pier, engine) == []
