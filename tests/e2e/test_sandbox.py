"""User code runs sandboxed: a Python model, in its instances and when pier checks it at
push time, gets a clean environment, a directory of its own outside the data dir, and (pier
running as root) an unprivileged user that the OS keeps from pier's files."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import PierProcess

FACTS = """
import json, os


def attempt(path):
    try:
        with open(path) as f:
            f.read()
        return "read"
    except OSError as exc:
        return type(exc).__name__


def facts(data_dir):
    return {
        "uid": os.getuid(),
        "token": attempt(os.path.join(data_dir, "admin.token")),
        "store": attempt(os.path.join(data_dir, "pier.db")),
        "env": sorted(os.environ),
        "cwd": os.getcwd(),
        "home": os.environ.get("HOME"),
    }
"""

SERVED = (
    FACTS
    + """

class Model:
    inputs = [{"name": "data_dir", "datatype": "BYTES", "shape": [-1]}]
    outputs = [{"name": "facts", "datatype": "BYTES", "shape": [-1]}]

    def load(self):
        pass

    def predict(self, inputs):
        return {"facts": [json.dumps(facts(d.decode())) for d in inputs["data_dir"]]}
"""
)

DESCRIBED = (
    FACTS
    + """
raise RuntimeError("FACTS " + json.dumps(facts({data_dir!r})))
"""
)

SECRET_ENV = {"PIER_SECRET_PROBE": "xyz", "AWS_SECRET_ACCESS_KEY": "not-for-instances"}


def model_dir(tmp_path: Path, name: str, source: str) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "model.py").write_text(source)
    return directory


def assert_sandboxed(facts: dict[str, object], pier: PierProcess) -> None:
    env = facts["env"]
    assert isinstance(env, list)
    assert not set(env) & {*SECRET_ENV, "PIER_URL", "PIER_DATA_DIR", "PIER_DATABASE_URL"}, env
    assert facts["home"] == facts["cwd"]
    assert not str(facts["cwd"]).startswith(str(pier.data_dir.resolve()))
    if os.geteuid() == 0:
        assert facts["uid"] != 0
        # the data dir is closed to it, whether it holds a store file (SQLite) or not
        assert facts["token"] == "PermissionError" and facts["store"] == "PermissionError"


@pytest.mark.skipif(os.geteuid() != 0, reason="the OS keeps an instance out only as root")
def test_a_python_model_cannot_read_the_data_dir_nor_pier_up_s_env(
    pier_factory: Callable[..., PierProcess], tmp_path: Path
) -> None:
    pier = pier_factory(env=SECRET_ENV)
    pier.cli("model", "push", str(model_dir(tmp_path, "probe", SERVED)), "--name", "probe",
             "--trust")  # fmt: skip
    pier.cli("node", "create", "probe", "--model", "probe", "--wait")
    request = {"inputs": [{"name": "data_dir", "shape": [1], "datatype": "BYTES",
                           "data": [str(pier.data_dir.resolve())]}]}  # fmt: skip
    with pier.gateway() as gw:
        answer = gw.post("/default/nodes/probe/v2/models/probe/infer", json=request)
    assert answer.status_code == 200, answer.text
    facts = json.loads(answer.json()["outputs"][0]["data"][0])
    assert facts["token"] == "PermissionError"  # refused by the OS
    assert_sandboxed(facts, pier)


def test_describing_a_python_model_needs_trust_and_runs_sandboxed(
    pier_factory: Callable[..., PierProcess], tmp_path: Path
) -> None:
    pier = pier_factory(env=SECRET_ENV)
    source = DESCRIBED.replace("{data_dir!r}", repr(str(pier.data_dir.resolve())))
    directory = model_dir(tmp_path, "described", source)
    with pier.api() as api:
        refused = api.post(
            "/api/v1/projects/default/models/described",
            params={"format": "python", "trust": "false"}, content=b"not read",
        )  # fmt: skip
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "trust"
    assert "runs its model.py" in refused.json()["error"]["message"]

    pushed = pier.cli("model", "push", str(directory), "--name", "described", "--trust",
                      check=False)  # fmt: skip
    assert pushed.returncode != 0
    facts = json.loads(pushed.stderr.split("FACTS ", 1)[1].strip().splitlines()[0])
    assert_sandboxed(facts, pier)
