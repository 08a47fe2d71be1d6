"""Projects, members, service accounts and tokens on a real `pier up`: the CLI path, and
isolation between projects through the API and the gateway, with revocation, expiry and
a member's removal taking effect at both."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import pier
from tests.conftest import IrisModel, PierProcess, running_pier
from tests.e2e.test_sdk_errors import NO_DOCKER

READY = "/v2/health/ready"


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory, iris_onnx: IrisModel) -> Iterator[PierProcess]:
    """Projects a and b, each with a private node iris of one instance."""
    with running_pier(
        tmp_path_factory.mktemp("projects") / "data", env=NO_DOCKER, timeout_s=120
    ) as started:
        for project in ("a", "b"):
            with pier.Client(started.url, started.token, project) as client:
                client.create_project(project)
                client.push_model(iris_onnx.path, "iris")
                client.create_node("iris", model="iris", min_instances=1)
        for project in ("a", "b"):
            started.wait_for(lambda p=project: routed(started, p), what=f"{project}/iris")
        yield started


def routed(up: PierProcess, project: str) -> bool:
    with pier.Client(up.url, up.token, project) as client:
        node = client.get_node("iris")
    return node.status == "Healthy" and node.routed


def token(up: PierProcess, project: str, role: str, **fields: Any) -> str:
    """A new token of ``role`` in ``project``."""
    with pier.Client(up.url, up.token, project) as admin:
        return admin.create_token(role, **fields).token


def bearer(value: str, **headers: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}", **headers}


def gateway_status(up: PierProcess, path: str, headers: dict[str, str]) -> int:
    with httpx.Client(base_url=up.gateway_url, trust_env=False, timeout=30) as gw:
        return gw.get(path, headers=headers).status_code


def api_status(up: PierProcess, value: str, path: str) -> int:
    with httpx.Client(base_url=up.url, trust_env=False, timeout=30) as api:
        return api.get(path, headers=bearer(value)).status_code


def eventually(up: PierProcess, check: Callable[[], bool], what: str) -> None:
    up.wait_for(check, timeout_s=15, what=what)


def test_the_cli_manages_projects_members_service_accounts_and_tokens(up: PierProcess) -> None:
    up.cli("project", "create", "team")
    assert "team" in up.cli("project", "list").stdout
    assert up.cli_json("project", "get", "team")["nodes"] == 0
    up.cli("project", "limits", "set", "--max-instances", "4", "--project", "team")
    shown = up.cli("project", "get", "team").stdout  # use against quota, beside the counts
    assert re.search(r"instances\s+0\s+4", shown), shown
    up.cli("member", "add", "alice", "--role", "editor", "--project", "team")
    up.cli("service-account", "create", "bot", "--role", "caller", "--project", "team")
    members = up.cli_json("member", "list", "--project", "team")["members"]
    assert {(m["principal"], m["kind"], m["role"]) for m in members} == {
        ("alice", "user", "editor"),
        ("bot", "service-account", "caller"),
    }
    made = up.cli("token", "create", "--for", "bot", "--role", "caller", "--expires", "30d",
                  "--project", "team").stdout  # fmt: skip
    value = made.splitlines()[1].strip()
    listed = up.cli("token", "list", "--project", "team", "--output", "json").stdout
    assert value not in listed
    [info] = json.loads(listed)["tokens"]
    assert info["principal"] == "bot" and info["expires_at"] is not None
    up.cli("token", "revoke", str(info["id"]), "--project", "team")
    assert json.loads(up.cli("token", "list", "-p", "team", "-o", "json").stdout)["tokens"] == []
    up.cli("member", "remove", "alice", "--project", "team")
    up.cli("service-account", "delete", "bot", "--project", "team")
    assert up.cli_json("member", "list", "--project", "team")["members"] == []
    refused = up.cli("project", "delete", "a", check=False)
    assert refused.returncode == 1
    assert "nodes iris" in refused.stderr + refused.stdout
    up.cli("project", "delete", "team")
    assert "team" not in up.cli("project", "list").stdout
    bad = up.cli("token", "create", "--role", "caller", "--expires", "soon", check=False)
    assert bad.returncode != 0 and "--expires" in bad.stderr


def test_a_token_of_one_project_cannot_read_change_or_call_another(up: PierProcess) -> None:
    admin_a = token(up, "a", "admin")
    assert api_status(up, admin_a, "/api/v1/projects/a/nodes/iris") == 200
    assert api_status(up, admin_a, "/api/v1/projects/b/nodes/iris") == 403
    with httpx.Client(base_url=up.url, trust_env=False) as api:
        patched = api.patch("/api/v1/projects/b/nodes/iris", headers=bearer(admin_a),
                            json={"spec": {"min_instances": 0}})  # fmt: skip
        made = api.post(
            "/api/v1/projects/b/tokens", headers=bearer(admin_a), json={"role": "admin"}
        )
    assert (patched.status_code, made.status_code) == (403, 403)
    with pier.Client(up.url, admin_a, "a") as client:
        assert [p.name for p in client.list_projects()] == ["a"]

    path = f"/a/nodes/iris{READY}"  # a new token reaches the gateway with the next routes
    eventually(up, lambda: gateway_status(up, path, bearer(admin_a)) == 200, "admitted")
    assert (
        gateway_status(up, READY, bearer(admin_a, **{"x-node-id": "iris", "x-pier-project": "a"}))
        == 200
    )
    for path, headers in [
        (f"/b/nodes/iris{READY}", {}),
        (READY, {"x-node-id": "iris", "x-pier-project": "b"}),
        (READY, {"x-node-id": "iris", "x-folder-id": "b"}),
        (READY, {"x-node-id": "iris"}),  # the default project
    ]:
        assert gateway_status(up, path, bearer(admin_a, **headers)) == 401, (path, headers)


def test_a_viewer_reads_but_cannot_call_and_a_caller_calls_but_cannot_read(
    up: PierProcess,
) -> None:
    viewer, caller = token(up, "a", "viewer"), token(up, "a", "caller")
    assert api_status(up, viewer, "/api/v1/projects/a/nodes") == 200
    assert api_status(up, caller, "/api/v1/projects/a/nodes") == 403
    eventually(up, lambda: gateway_status(up, f"/a/nodes/iris{READY}", bearer(caller)) == 200,
               "the gateway to admit the new caller token")  # fmt: skip
    assert gateway_status(up, f"/a/nodes/iris{READY}", bearer(viewer)) == 401


def test_a_revoked_token_stops_at_the_api_at_once_and_at_the_gateway_within_seconds(
    up: PierProcess,
) -> None:
    editor = token(up, "a", "editor", name="ci")
    path = f"/a/nodes/iris{READY}"
    eventually(up, lambda: gateway_status(up, path, bearer(editor)) == 200, "admitted")
    with pier.Client(up.url, up.token, "a") as admin:
        [made] = [t for t in admin.list_tokens() if t.name == "ci"]
        admin.revoke_token(made.id)
    assert api_status(up, editor, "/api/v1/projects/a/nodes") == 401
    eventually(up, lambda: gateway_status(up, path, bearer(editor)) == 401, "refused")


def test_an_expired_token_stops_at_the_api_and_the_gateway(up: PierProcess) -> None:
    caller = token(up, "a", "editor", expires_in_s=4)
    path = f"/a/nodes/iris{READY}"
    eventually(up, lambda: gateway_status(up, path, bearer(caller)) == 200, "admitted")
    eventually(up, lambda: gateway_status(up, path, bearer(caller)) == 401, "expired")
    assert api_status(up, caller, "/api/v1/projects/a/nodes") == 401


def test_a_members_role_narrows_their_tokens_and_removal_stops_them(up: PierProcess) -> None:
    with pier.Client(up.url, up.token, "a") as admin:
        admin.add_member("carol", "editor")
    carol = token(up, "a", "admin", principal="carol")
    assert api_status(up, carol, "/api/v1/projects/a/nodes") == 200
    assert api_status(up, carol, "/api/v1/projects/a/tokens") == 403  # editor: no manage
    path = f"/a/nodes/iris{READY}"
    eventually(up, lambda: gateway_status(up, path, bearer(carol)) == 200, "admitted")
    with pier.Client(up.url, up.token, "a") as admin:
        admin.remove_member("carol")
    assert api_status(up, carol, "/api/v1/projects/a/nodes") == 403
    eventually(up, lambda: gateway_status(up, path, bearer(carol)) == 401, "refused")


def test_the_control_planes_metrics_count_nodes_instances_and_api_requests_for_the_admin(
    up: PierProcess,
) -> None:
    viewer = token(up, "a", "viewer")
    assert api_status(up, viewer, "/api/v1/projects/a/nodes/iris") == 200
    with httpx.Client(base_url=up.url, trust_env=False, timeout=30) as api:
        assert api.get("/metrics").status_code == 401
        assert api.get("/metrics", headers=bearer(viewer)).status_code == 403  # every project
        answer = api.get("/metrics", headers=bearer(up.token))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    for project in ("a", "b"):
        assert f'pier_nodes{{project="{project}",status="Healthy"}} 1.0' in text
        assert (
            f'pier_node_instances{{node="iris",project="{project}",status="Healthy"}} 1.0' in text
        )
    route = "/api/v1/projects/{project}/nodes/{name}"
    assert f'pier_api_requests_total{{method="GET",route="{route}",status="200"}}' in text
    assert 'route="/metrics",status="403"' in text
    assert viewer not in text and up.token not in text  # no token reaches the figures
