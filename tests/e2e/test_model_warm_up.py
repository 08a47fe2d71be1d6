"""Warm-up through a real pier: a model pushed with an example request warms up on it and
serves; one whose warm-up fails says why in the node's events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import PierProcess

PICKY = """
class Model:
    inputs = [{"name": "word", "datatype": "BYTES", "shape": [1]}]
    outputs = [{"name": "length", "datatype": "INT64", "shape": [1]}]

    def load(self):
        pass

    def predict(self, inputs):
        word = inputs["word"][0].decode()
        if word != "hello":
            raise ValueError(f"unknown word {word!r}")
        return {"length": [len(word)]}
"""
REQUEST = {"inputs": [{"name": "word", "datatype": "BYTES", "shape": [1], "data": ["hello"]}]}


def picky_model(tmp_path: Path) -> Path:
    directory = tmp_path / "picky"
    directory.mkdir()
    (directory / "model.py").write_text(PICKY)
    return directory


def events(pier: PierProcess, node: str) -> list[dict[str, Any]]:
    with pier.api() as api:
        found: list[dict[str, Any]] = api.get(
            f"/api/v1/projects/default/nodes/{node}/events"
        ).json()["events"]
    return found


def test_a_model_pushed_with_an_example_warms_up_on_it(pier: PierProcess, tmp_path: Path) -> None:
    (tmp_path / "req.json").write_text(json.dumps(REQUEST))
    pushed = pier.cli(
        "model", "push", str(picky_model(tmp_path)), "--name", "picky", "--trust",
        "--example", f"@{tmp_path}/req.json", "--output", "json",
    )  # fmt: skip
    assert "example_sha256" in json.loads(pushed.stdout)["metadata"]
    pier.cli("node", "create", "picky", "--model", "picky", "--wait")
    called = pier.cli("call", "picky", "/v2/models/picky/infer", "--data", json.dumps(REQUEST))
    assert json.loads(called.stdout)["outputs"][0]["data"] == [5]


def test_a_failed_warm_up_says_why_in_an_event(pier: PierProcess, tmp_path: Path) -> None:
    pier.cli("model", "push", str(picky_model(tmp_path)), "--name", "picky", "--trust")
    pier.cli("node", "create", "picky", "--model", "picky")

    def failure() -> dict[str, Any] | None:
        failed = [e for e in events(pier, "picky") if e["kind"] == "instance_failed"]
        return failed[0] if failed else None

    event = pier.wait_for(failure, what="an instance_failed event", timeout_s=90)
    assert "unknown word '0'" in event["message"]
    assert "pier model push --example" in event["message"]


def test_an_example_that_is_no_inference_request_is_refused(
    pier: PierProcess, tmp_path: Path
) -> None:
    refused = pier.cli(
        "model", "push", str(picky_model(tmp_path)), "--name", "picky", "--trust",
        "--example", '{"inputs": []}', check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "'inputs' list" in refused.stderr
    with pier.api() as api:
        assert api.get("/api/v1/projects/default/models").json()["models"] == []
