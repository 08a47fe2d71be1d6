"""Guarded rollouts decided on the gateway's own figures, on a real `pier up` under a
light client load through the alias: a rollout to a node whose model fails one request
in twenty (a 500 from the model server) rolls back by itself; one to a healthy node
completes. `pier alias get` shows the rollout's decision and a mirror's figures.

One `pier up` serves the module; bakes are 2 s and a step needs 10 requests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PierProcess, running_pier
from tests.e2e.test_sdk_errors import NO_DOCKER

MODEL_PY = """
class Model:
    inputs = [{"name": "x", "datatype": "FP32", "shape": [-1]}]
    outputs = [{"name": "y", "datatype": "FP32", "shape": [-1]}]

    def load(self):
        pass

    def predict(self, inputs):
        if FLAKY and float(inputs["x"][0]) == 7.0:  # not 0: the warm-up sends zeros
            raise RuntimeError("x == 7 fails on this version")
        return {"y": inputs["x"]}
"""
ALIASES = "/api/v1/projects/default/aliases"
EVERY_NTH_FAILS = 20
"""The load sends x = 7 on one request in twenty: the flaky model fails those."""


def model_dir(root: Path, name: str, *, flaky: bool) -> Path:
    directory = root / name
    directory.mkdir()
    (directory / "model.py").write_text(f"FLAKY = {flaky}\n{MODEL_PY}")
    return directory


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PierProcess]:
    root = tmp_path_factory.mktemp("rollout-decisions")
    with running_pier(root / "data", env=NO_DOCKER, timeout_s=120) as pier:
        for name, flaky in (("steady", False), ("flaky", True)):  # m:1, m:2
            path = model_dir(root, name, flaky=flaky)
            pier.cli("model", "push", str(path), "--name", "m", "--trust")
        for node, model in (("old", "m:1"), ("new", "m:1"), ("bad", "m:2")):
            pier.cli("node", "create", node, "--model", model, "--health-interval", "0.2",
                     "--wait")  # fmt: skip
        yield pier


class AliasLoad:
    """One client in a thread calling the alias's model as fast as it answers."""

    def __init__(self, pier: PierProcess, alias: str) -> None:
        self._pier = pier
        self._path = f"/default/aliases/{alias}/v2/models/m/infer"
        self._stop = threading.Event()
        self.statuses: dict[tuple[str | None, int], int] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> AliasLoad:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with self._pier.gateway() as gw:
            sent = 0
            while not self._stop.is_set():
                x = float(sent % EVERY_NTH_FAILS)
                body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [x]}]}
                try:
                    answer = gw.post(self._path, json=body)
                except httpx.HTTPError:
                    key: tuple[str | None, int] = (None, 0)
                else:
                    key = (answer.headers.get("x-pier-node"), answer.status_code)
                self.statuses[key] = self.statuses.get(key, 0) + 1
                sent += 1


def create_alias(pier: PierProcess, alias: str, *flags: str) -> None:
    pier.cli("alias", "create", alias, "--node", "old", *flags)

    def routed() -> bool:
        with pier.api() as api:
            return bool(api.get(f"{ALIASES}/{alias}").json()["routed"])

    pier.wait_for(routed, what=f"alias {alias} to be served")


def start_rollout(pier: PierProcess, alias: str, to_node: str) -> None:
    plan = {"to_node": to_node, "steps": [50, 100], "bake_s": 2, "max_error_rate": 0.01,
            "min_requests": 10}  # fmt: skip
    with pier.api() as api:
        started = api.post(f"{ALIASES}/{alias}/rollout", json=plan)
    assert started.status_code == 201, started.text


def finished_rollout(pier: PierProcess, alias: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        with pier.api() as api:
            rollout: dict[str, Any] = api.get(f"{ALIASES}/{alias}/rollout").json()
        return rollout if rollout["phase"] != "running" else None

    found: dict[str, Any] = pier.wait_for(ended, what=f"rollout of {alias} to end", timeout_s=120)
    return found


def node_shares(pier: PierProcess, alias: str) -> list[tuple[str, int]]:
    with pier.api() as api:
        spec = api.get(f"{ALIASES}/{alias}").json()["spec"]
    return [(n["node"], n["share"]) for n in spec["nodes"]]


def test_a_rollout_to_a_node_failing_one_request_in_twenty_rolls_back(up: PierProcess) -> None:
    create_alias(up, "shaky")
    with AliasLoad(up, "shaky") as load:
        start_rollout(up, "shaky", "bad")
        rollout = finished_rollout(up, "shaky")
    assert rollout["phase"] == "rolled_back", (rollout, load.statuses)
    assert "max_error_rate" in rollout["why"] and rollout["figures"]["errors"] > 0, rollout
    assert node_shares(up, "shaky") == [("old", 100)]
    assert load.statuses.get(("bad", 500), 0) > 0, load.statuses  # the gateway counted these
    assert load.statuses.get(("old", 200), 0) > 0, load.statuses
    shown = up.cli("alias", "get", "shaky").stdout
    assert "rolled_back" in shown and "max_error_rate" in shown, shown
    assert [e["kind"] for e in up.events("bad")][-1] == "rollout_rolled_back"


def test_a_rollout_to_a_healthy_node_completes_and_a_mirror_s_figures_are_shown(
    up: PierProcess,
) -> None:
    create_alias(up, "calm", "--mirror", "bad=100")
    with AliasLoad(up, "calm") as load:
        start_rollout(up, "calm", "new")
        rollout = finished_rollout(up, "calm")
    assert rollout["phase"] == "completed", rollout
    assert [p["errors"] for p in rollout["passed"]] == [0, 0], rollout
    assert node_shares(up, "calm") == [("new", 100)]
    assert set(load.statuses) <= {("old", 200), ("new", 200)}, load.statuses

    def mirror_figures() -> dict[str, Any] | None:
        with up.api() as api:
            seen = api.get(f"{ALIASES}/calm").json()["mirror_figures"]
        return seen[0] if seen and seen[0]["errors"] > 0 else None

    mirror = up.wait_for(mirror_figures, what="the mirror's figures in the alias view")
    assert mirror["node"] == "bad" and mirror["mirrored"] >= mirror["errors"] > 0, mirror
    assert mirror["p95_ms"] is not None, mirror
    shown = up.cli("alias", "get", "calm").stdout
    assert "MIRROR" in shown and "completed" in shown, shown
    with up.api() as api:
        schema = api.get("/openapi.json").json()["components"]["schemas"]
    assert "MirrorFiguresView" in schema and "mirror_figures" in schema["AliasView"]["properties"]
