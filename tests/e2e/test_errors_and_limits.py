"""Bad input gets a clear JSON error naming the field; limits and tokens are enforced.

The checks share one `pier up` (they add nothing another one reads: a model, a secret);
the two that run instances start their own."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import IrisModel, PierProcess, running_pier, sqlite_only
from tests.e2e.test_model_node_end_to_end import push_and_create

MiB = 2**20


@pytest.fixture(scope="module")
def pier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PierProcess]:
    with running_pier(tmp_path_factory.mktemp("errors") / "data") as up:
        yield up


def test_admin_token_file_is_private(pier: PierProcess) -> None:
    mode = stat.S_IMODE(os.stat(pier.data_dir / "admin.token").st_mode)
    assert mode == 0o600


@sqlite_only
def test_the_store_holding_secrets_is_private(pier: PierProcess) -> None:
    pier.cli("secret", "set", "regcred", "--username", "me", "--password-stdin", input="pw")
    assert stat.S_IMODE(os.stat(pier.data_dir).st_mode) == 0o700
    for name in ("pier.db", "pier.db-wal"):
        assert stat.S_IMODE(os.stat(pier.data_dir / name).st_mode) == 0o600, name


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}]
)
def test_api_and_gateway_refuse_missing_or_wrong_token(
    pier: PierProcess, headers: dict[str, str]
) -> None:
    with httpx.Client(trust_env=False) as c:
        api = c.get(f"{pier.url}/api/v1/projects/default/nodes", headers=headers)
        gw = c.get(f"{pier.gateway_url}/default/nodes/iris/v2/health/ready", headers=headers)
    assert api.status_code == gw.status_code == 401, (api.text, gw.text)
    assert api.json()["error"]["code"] == "unauthorized"  # the control plane's error object
    assert gw.json()["code"] == "unauthorized"  # the gateway's V2 error, details beside
    assert isinstance(gw.json()["error"], str)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"model": "iris", "min_instances": 3, "max_instances": 1}, "max_instances"),
        ({"model": "iris", "configuration": "x9.9"}, "configuration"),
        ({"model": "iris", "replicas": 2}, "replicas"),
    ],
)
def test_bad_specs_are_422_naming_the_field(
    pier: PierProcess, iris_onnx: IrisModel, spec: dict, field: str
) -> None:
    pier.cli("model", "push", str(iris_onnx.path), "--name", "iris")
    with pier.api() as api:
        r = api.post("/api/v1/projects/default/nodes", json={"name": "iris", "spec": spec})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_unknown_model_and_bad_name_are_4xx(pier: PierProcess) -> None:
    with pier.api() as api:
        unknown = api.post(
            "/api/v1/projects/default/nodes", json={"name": "iris", "spec": {"model": "nope"}}
        )
        bad_name = api.post(
            "/api/v1/projects/default/nodes", json={"name": "Bad_Name", "spec": {"model": "nope"}}
        )
        missing = api.get("/api/v1/projects/default/nodes/ghost")
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]["message"]
    assert bad_name.status_code == 422 and bad_name.json()["error"]["field"] == "name"
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_cli_names_the_flag(pier: PierProcess, iris_onnx: IrisModel) -> None:
    pier.cli("model", "push", str(iris_onnx.path), "--name", "iris")
    result = pier.cli(
        "node", "create", "iris", "--model", "iris", "--min", "3", "--max", "1", check=False
    )
    assert result.returncode == 1
    assert result.stderr == "error: --max (1) is below --min (3)\n"  # the flags typed


def test_body_over_16_mib_is_413_before_reaching_an_instance(
    pier_factory: Callable[..., PierProcess], iris_onnx: IrisModel
) -> None:
    pier = pier_factory()
    push_and_create(pier, iris_onnx, instances=1)
    with pier.gateway() as gw:
        r = gw.post("/default/nodes/iris/v2/models/iris/infer", content=b"x" * (16 * MiB + 1))
        at_limit = gw.post("/default/nodes/iris/v2/models/iris/infer", content=b"x" * (16 * MiB))
    assert r.status_code == 413
    assert r.json()["code"] == "body_too_large"
    assert at_limit.status_code == 400  # reached the model server, which refused bad JSON


def test_sklearn_pickle_needs_trust(pier_factory: Callable[..., PierProcess], tmp_path) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    pier = pier_factory()

    x, y = load_iris(return_X_y=True)
    path = tmp_path / "tree.joblib"
    joblib.dump(DecisionTreeClassifier(max_depth=2).fit(x, y), path)
    refused = pier.cli("model", "push", str(path), "--name", "tree", check=False)
    assert refused.returncode == 1 and "trust" in refused.stderr
    pier.cli("model", "push", str(path), "--name", "tree", "--trust")
    pier.cli("node", "create", "tree", "--model", "tree", "--wait")


def test_openapi_is_served(pier: PierProcess) -> None:
    with httpx.Client(trust_env=False) as c:
        spec = c.get(f"{pier.url}/openapi.json").json()
    assert "/api/v1/projects/{project}/nodes" in spec["paths"]
