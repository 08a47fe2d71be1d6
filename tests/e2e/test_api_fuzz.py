"""Schemathesis fuzzes the REST API of a real `pier up` from its /openapi.json, with the
admin token in the ``default`` project: no 5xx, no answer outside its declared schema,
content type or headers, no undeclared status code, 401 without the token, 405 with
``Allow`` for methods a path does not have. Bounded: a fixed seed and a few examples per
operation, fewer under CI (``CI=true``: 2, and 5 for the node bodies) where the whole
suite shares two cores; a run without CI fuzzes 5 and 15.

No operation is excluded. Two parameters are pinned because fuzzing them waits by
design: ``follow`` of the logs (true keeps the response open for new lines, forever) and
``wait_s`` of the route table (a long poll of up to 60 s). Left out, and why:

* the ``positive_data_acceptance`` check: a body the schema accepts may still be refused
  with 422 for rules a JSON Schema cannot say (a node needs a model or an image;
  max_instances is at least min_instances; an upload must be a model pier can load);
* the ``use_after_free`` check: deleting a node is 202, the node stays (Deleting) until
  its instances have stopped, as ARCHITECTURE.md describes;
* the stateful phase: it follows links from the seeded node to PATCH it with fuzzed
  specs, which may ask for up to 1000 instances of it on this machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import pier
from tests.conftest import IrisModel, PierProcess, running_pier
from tests.e2e.test_sdk_errors import NO_DOCKER

CONFIG = """
seed = 20251201
workers = 1
request-timeout = 30

[generation]
max-examples = @EXAMPLES@
no-shrink = true

[phases]
stateful.enabled = false

[parameters]
project = "default"

[checks]
positive_data_acceptance.enabled = false
use_after_free.enabled = false

[[operations]]
include-method = "GET"
include-path-regex = "/\\\\{name\\\\}"
parameters = { name = "iris" }  # an existing model, node and alias: their views, not 404s

[[operations]]
include-path-regex = "/logs$"
parameters = { name = "iris", follow = false }

[[operations]]
include-path = "/api/v1/routes"
parameters = { wait_s = 0 }

[[operations]]
include-method-regex = "^(POST|PATCH)$"
include-path-regex = "/nodes(/\\\\{name\\\\})?$"
phases.coverage.enabled = false  # hundreds of spec boundary cases: fuzzed instead
generation.max-examples = @BODY_EXAMPLES@
"""
EXAMPLES, BODY_EXAMPLES = (2, 5) if os.environ.get("CI") == "true" else (5, 15)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, iris_onnx: IrisModel) -> Iterator[PierProcess]:
    """Model iris, node iris (min 0: no instance runs), alias iris over it and a secret;
    no Docker engine, so an image node in a fuzzed body is refused, never pulled."""
    with running_pier(tmp_path_factory.mktemp("fuzz") / "data", env=NO_DOCKER) as up:
        with pier.Client(up.url, up.token) as client:
            client.push_model(iris_onnx.path, "iris")
            client.create_node("iris", model="iris", min_instances=0)
            client.create_alias("iris", nodes=[{"node": "iris"}])
            client.put_secret("regcred", {"username": "me", "password": "pw"})
        yield up


def test_schemathesis_finds_nothing_against_the_openapi_schema(
    seeded: PierProcess, tmp_path: Path
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        CONFIG.replace("@EXAMPLES@", str(EXAMPLES)).replace("@BODY_EXAMPLES@", str(BODY_EXAMPLES))
    )
    argv = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file", str(config), "--no-color",
        "run", f"{seeded.url}/openapi.json",
        "--header", f"Authorization: Bearer {seeded.token}",
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-4000:]
    assert f"Tested: {operations(seeded)}" in result.stdout, result.stdout[-3000:]
    assert seeded.proc is not None and seeded.proc.poll() is None  # still serving


def operations(up: PierProcess) -> int:
    """How many operations the schema has: every one of them is fuzzed."""
    with httpx.Client(trust_env=False) as client:
        paths = client.get(f"{up.url}/openapi.json").json()["paths"]
    methods = {"get", "put", "post", "patch", "delete", "head", "options"}
    return sum(1 for item in paths.values() for method in item if method in methods)
