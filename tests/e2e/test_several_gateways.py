"""Several gateways: a `pier up` (its own gateway) and a second one started with
`pier gateway`, both reporting to the control plane. A node counts as routed only once
both serve it; a paused gateway holds that up until it reports again, or until the
registry's timeout leaves it out (one log line naming it, and one when it is back)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import pier
from tests.conftest import IrisModel, PierProcess, free_port, running_pier

TIMEOUT_S = 6
"""The registry's timeout here: a paused gateway is left out after this long."""
NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


@dataclass
class SecondGateway:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def signal(self, sig: int) -> None:
        """``sig`` to the gateway and its workers (its own process group)."""
        os.killpg(self.proc.pid, sig)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory, iris_onnx: IrisModel) -> Iterator[PierProcess]:
    env = {"PIER_GATEWAY_REGISTRY__TIMEOUT_S": str(TIMEOUT_S), **NO_DOCKER}
    with running_pier(tmp_path_factory.mktemp("gateways") / "data", env=env) as pier_up:
        with pier.Client(pier_up.url, pier_up.token) as client:
            client.push_model(iris_onnx.path, "iris")
            client.create_node("iris", model="iris", min_instances=1)
        yield pier_up


@pytest.fixture(scope="module")
def second(up: PierProcess) -> Iterator[SecondGateway]:
    port = free_port()
    log_path = up.data_dir.parent / "second-gateway.log"
    argv = [
        sys.executable, "-m", "pier", "gateway", "--control-url", up.url,
        "--token-file", str(up.data_dir / "admin.token"), "--port", str(port),
        "--routes-file", str(up.data_dir.parent / "second" / "routes.json"),
    ]  # fmt: skip
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=up.env, start_new_session=True
        )
    gateway = SecondGateway(proc, port, log_path)
    try:
        up.wait_for(lambda: _listed(up).get(gateway.url, {}).get("state") == "live",
                    timeout_s=30, what="the second gateway to report")  # fmt: skip
        yield gateway
    finally:
        with contextlib.suppress(ProcessLookupError):
            gateway.signal(signal.SIGCONT)
            gateway.signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            gateway.signal(signal.SIGKILL)
            proc.wait(5)


def _listed(up: PierProcess) -> dict[str, dict[str, Any]]:
    """The registered gateways by URL."""
    with up.api() as api:
        answer = api.get("/api/v1/gateways")
    answer.raise_for_status()
    return {g["url"]: g for g in answer.json()["gateways"]}


def _version_with(up: PierProcess, node: str) -> int | None:
    """The version of the control plane's route table, once it has ``node``."""
    with up.api() as api:
        table = api.get("/api/v1/routes").json()
    return int(table["version"]) if f"default/{node}" in table["nodes"] else None


def test_both_gateways_are_listed_and_the_second_one_answers(
    up: PierProcess, second: SecondGateway, iris_onnx: IrisModel
) -> None:
    listed = _listed(up)
    assert {listed[up.gateway_url]["state"], listed[second.url]["state"]} == {"live"}
    assert listed[up.gateway_url]["id"] != listed[second.url]["id"]
    kept = (up.data_dir.parent / "second" / "routes.id").read_text().strip()
    assert listed[second.url]["id"] == kept  # beside its routes file
    up.wait_for(lambda: up.serving("iris"), timeout_s=60, what="iris to be served")
    answer = httpx.post(
        f"{second.url}/default/nodes/iris/v2/models/iris/infer",
        json=iris_onnx.infer_request(), timeout=30, trust_env=False,
        headers={"Authorization": f"Bearer {up.token}"},  # nodes are private by default
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_name"] == "iris"


def test_a_node_is_routed_only_once_every_gateway_serves_it(
    up: PierProcess, second: SecondGateway
) -> None:
    second.signal(signal.SIGSTOP)
    try:
        version = _create_and_see_served(up, "late")
        # A newer table served by the first gateway proves it has long-polled (and
        # reported) since it served late's: the second one is all late waits for.
        _create_and_see_served(up, "late-2")
        routed = up.node("late")["routed"]
        still_live = _listed(up)[second.url]["state"] == "live"  # so it was when routed was read
        assert still_live, "the paused gateway was left out too early for this check"
        assert not routed
    finally:
        second.signal(signal.SIGCONT)
    up.wait_for(lambda: up.node("late")["routed"], timeout_s=10, what="late to be routed")
    assert _listed(up)[second.url]["routes_version"] >= version


def _create_and_see_served(up: PierProcess, node: str) -> int:
    """Create ``node`` (no instance) and wait until `pier up`'s gateway serves a route
    table that has it; that table's version."""
    with pier.Client(up.url, up.token) as client:
        client.create_node(node, model="iris", min_instances=0)
    version: int = up.wait_for(lambda: _version_with(up, node), what=f"{node}'s route")
    up.wait_for(lambda: _listed(up)[up.gateway_url]["routes_version"] >= version,
                what=f"pier up's gateway to serve {node}")  # fmt: skip
    return version


def test_a_silent_gateway_is_left_out_after_the_timeout_and_counted_when_back(
    up: PierProcess, second: SecondGateway
) -> None:
    second_id = _listed(up)[second.url]["id"]
    second.signal(signal.SIGSTOP)
    try:
        with pier.Client(up.url, up.token) as client:
            client.create_node("later", model="iris", min_instances=0)
        up.wait_for(lambda: up.node("later")["routed"], timeout_s=TIMEOUT_S + 10,
                    what="later to be routed once the paused gateway is left out")  # fmt: skip
        assert _listed(up)[second.url]["state"] == "silent"
        assert _lines(up, "gateway silent", second_id) == 1
    finally:
        second.signal(signal.SIGCONT)
    up.wait_for(lambda: _listed(up)[second.url]["state"] == "live", timeout_s=10,
                what="the second gateway to be counted again")  # fmt: skip
    assert _lines(up, "gateway reporting again", second_id) == 1
    assert up.token not in up.output() and up.token not in second.log_path.read_text()


def _lines(up: PierProcess, event: str, gateway_id: str) -> int:
    """Lines of `pier up`'s log with ``event`` naming ``gateway_id``."""
    return sum(1 for line in up.output().splitlines() if event in line and gateway_id in line)


def test_pier_gateway_names_a_token_file_it_cannot_read_and_a_url_that_does_not_answer(
    tmp_path: Path,
) -> None:
    missing, token = tmp_path / "missing", tmp_path / "token"
    token.write_text("some-token\n")
    unreachable = f"http://127.0.0.1:{free_port()}"
    runs = [  # both at once: each is mostly the CLI starting
        _pier_gateway("--control-url", "http://127.0.0.1:9", "--token-file", str(missing)),
        _pier_gateway("--control-url", unreachable, "--token-file", str(token)),
    ]
    (no_token, _), (nobody, _) = (run.communicate(timeout=60) for run in runs)
    assert [run.returncode for run in runs] == [1, 1]
    assert "Traceback" not in no_token + nobody
    assert f"--token-file {missing}: cannot read it" in no_token
    assert f"--control-url {unreachable}: no control plane answers there" in nobody
    assert "some-token" not in nobody


def _pier_gateway(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return subprocess.Popen(
        [sys.executable, "-m", "pier", "gateway", *args], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env={**env, "COLUMNS": "200"},
    )  # fmt: skip
