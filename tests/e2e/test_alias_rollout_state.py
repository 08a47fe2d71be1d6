"""A rollout started with `pier alias rollout` against a real `pier up`: the alias gets
its first step's shares, the state survives a SIGKILL of `pier up` as it was (resumed,
not restarted), `alias get` shows it, and `--abort` puts back the shares of before."""

from __future__ import annotations

import json
import signal

from tests.conftest import IrisModel, PierProcess

ALIASES = "/api/v1/projects/default/aliases"


def shares(pier: PierProcess) -> list[tuple[str, int]]:
    with pier.api() as api:
        spec = api.get(f"{ALIASES}/prod").json()["spec"]
    return [(n["node"], n["share"]) for n in spec["nodes"]]


def test_a_rollout_is_stored_survives_a_sigkill_and_aborts(
    pier: PierProcess, iris_onnx: IrisModel
) -> None:
    pier.cli("model", "push", str(iris_onnx.path), "--name", "iris")
    for name in ("v1", "v2"):
        pier.cli("node", "create", name, "--model", "iris", "--min", "0")
    with pier.api() as api:
        created = api.post(ALIASES, json={"name": "prod", "spec": {"nodes": [{"node": "v1"}]}})
        assert created.status_code == 201, created.text
    started = json.loads(pier.cli(
        "alias", "rollout", "prod", "--to", "v2", "--steps", "10,100", "--bake", "1h",
        "--max-error-rate", "1%", "--output", "json",
    ).stdout)  # fmt: skip
    assert (started["phase"], started["step"], started["percent"]) == ("running", 1, 10)
    assert shares(pier) == [("v1", 90), ("v2", 10)]

    pier.stop(signal.SIGKILL)
    pier.start(timeout_s=120)  # a loaded machine can take a while
    with pier.api() as api:
        alias = api.get(f"{ALIASES}/prod").json()
    rollout = alias["rollout"]
    assert (rollout["phase"], rollout["step"], rollout["why"]) == ("running", 1, started["why"])
    assert shares(pier) == [("v1", 90), ("v2", 10)]

    aborted = pier.cli("alias", "rollout", "prod", "--abort").stdout
    assert "rolled_back" in aborted and "aborted by admin" in aborted
    assert shares(pier) == [("v1", 100)]
    kinds = [e["kind"] for e in pier.events("v2")]
    assert kinds.count("rollout_started") == 1 and kinds[-1] == "rollout_rolled_back"
    with pier.api() as api:
        openapi = api.get("/openapi.json").json()
    assert "/api/v1/projects/{project}/aliases/{name}/rollout/abort" in openapi["paths"]
