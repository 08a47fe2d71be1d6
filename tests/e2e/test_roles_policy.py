"""Every REST route in /openapi.json, called with a token of each role (and a token of
another project), is allowed or refused exactly as the expected matrix below says; a
route missing from the matrix or from pier's policy table fails."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pier.api.policy import POLICY
from tests.conftest import PierProcess, running_pier
from tests.e2e.test_sdk_errors import NO_DOCKER

ROLES = ("viewer", "caller", "editor", "admin")
READ = {"viewer", "editor", "admin"}
WRITE = {"editor", "admin"}
MANAGE = {"admin"}
ANY = {*ROLES, "other-project"}
INSTALLATION: set[str] = set()
"""Allowed to the installation admin only (it is allowed everything)."""

_P = "/api/v1/projects/{project}"
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/v1/info"): ANY,
    ("GET", "/api/v1/configurations"): ANY,
    ("GET", "/api/v1/routes"): INSTALLATION,
    ("GET", "/api/v1/gateways"): INSTALLATION,
    ("POST", "/api/v1/gateways/{gateway_id}/report"): INSTALLATION,
    ("GET", "/metrics"): INSTALLATION,
    ("GET", "/api/v1/controller"): INSTALLATION,
    ("GET", "/api/v1/projects"): ANY,
    ("POST", "/api/v1/projects"): INSTALLATION,
    ("GET", _P): READ,
    ("DELETE", _P): INSTALLATION,
    ("GET", f"{_P}/models"): READ,
    ("GET", f"{_P}/models/{{name}}"): READ,
    ("POST", f"{_P}/models/{{name}}"): WRITE,
    ("DELETE", f"{_P}/models/{{name}}"): WRITE,
    ("GET", f"{_P}/nodes"): READ,
    ("POST", f"{_P}/nodes"): WRITE,
    ("GET", f"{_P}/nodes/{{name}}"): READ,
    ("PATCH", f"{_P}/nodes/{{name}}"): WRITE,
    ("DELETE", f"{_P}/nodes/{{name}}"): WRITE,
    ("POST", f"{_P}/nodes/{{name}}/suspend"): WRITE,
    ("POST", f"{_P}/nodes/{{name}}/resume"): WRITE,
    ("GET", f"{_P}/nodes/{{name}}/instances"): READ,
    ("GET", f"{_P}/nodes/{{name}}/stats"): READ,
    ("GET", f"{_P}/nodes/{{name}}/events"): READ,
    ("GET", f"{_P}/nodes/{{name}}/logs"): READ,
    ("GET", f"{_P}/nodes/{{name}}/metrics"): READ,
    ("GET", f"{_P}/nodes/{{name}}/series"): READ,
    ("GET", f"{_P}/aliases"): READ,
    ("POST", f"{_P}/aliases"): WRITE,
    ("GET", f"{_P}/aliases/{{name}}"): READ,
    ("GET", f"{_P}/aliases/{{name}}/series"): READ,
    ("PUT", f"{_P}/aliases/{{name}}"): WRITE,
    ("PATCH", f"{_P}/aliases/{{name}}"): WRITE,
    ("DELETE", f"{_P}/aliases/{{name}}"): WRITE,
    ("POST", f"{_P}/aliases/{{name}}/rollout"): WRITE,
    ("GET", f"{_P}/aliases/{{name}}/rollout"): READ,
    ("POST", f"{_P}/aliases/{{name}}/rollout/abort"): WRITE,
    ("GET", f"{_P}/secrets"): READ,
    ("PUT", f"{_P}/secrets/{{name}}"): WRITE,
    ("DELETE", f"{_P}/secrets/{{name}}"): WRITE,
    ("GET", f"{_P}/members"): READ,
    ("POST", f"{_P}/members"): MANAGE,
    ("DELETE", f"{_P}/members/{{principal}}"): MANAGE,
    ("GET", f"{_P}/service-accounts"): READ,
    ("POST", f"{_P}/service-accounts"): MANAGE,
    ("DELETE", f"{_P}/service-accounts/{{name}}"): MANAGE,
    ("GET", f"{_P}/tokens"): MANAGE,
    ("POST", f"{_P}/tokens"): MANAGE,
    ("DELETE", f"{_P}/tokens/{{token_id}}"): MANAGE,
    ("GET", f"{_P}/limits"): READ,
    ("PUT", f"{_P}/limits"): MANAGE,
    ("GET", "/api/v1/audit"): INSTALLATION,
    ("POST", "/api/v1/secrets/rotate-key"): INSTALLATION,
}
PATH_VALUES = {
    "name": "nosuch",
    "principal": "nosuch",
    "token_id": "999999",
    "gateway_id": "gw-nosuch",
}
"""Path parameters name nothing that exists: an allowed call changes nothing."""


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PierProcess]:
    with running_pier(
        tmp_path_factory.mktemp("roles") / "data", env=NO_DOCKER, timeout_s=120
    ) as pier:
        with pier.api() as api:
            for project in ("a", "b", "scratch"):
                assert api.post("/api/v1/projects", json={"name": project}).status_code == 201
        yield pier


def make_token(up: PierProcess, project: str, role: str, **body: Any) -> str:
    with up.api() as api:
        answer = api.post(f"/api/v1/projects/{project}/tokens", json={"role": role, **body})
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["token"]
    return token


def operations(up: PierProcess) -> list[tuple[str, str]]:
    with up.api() as api:
        paths = api.get("/openapi.json").json()["paths"]
    return [(method.upper(), path) for path, item in paths.items() for method in item]


def call(up: PierProcess, token: str, method: str, path: str, project: str) -> httpx.Response:
    url = re.sub(r"\{(\w+)\}", lambda m: {"project": project, **PATH_VALUES}[m[1]], path)
    params = {"wait_s": "0"} if path == "/api/v1/routes" else {}
    body = {} if method in ("POST", "PUT", "PATCH") else None
    with httpx.Client(base_url=up.url, trust_env=False, timeout=30) as client:
        return client.request(
            method, url, params=params, json=body, headers={"Authorization": f"Bearer {token}"}
        )


def test_every_route_is_in_the_policy_and_the_expected_matrix(up: PierProcess) -> None:
    seen = operations(up)
    assert sorted(set(seen) - set(POLICY)) == [], "routes missing from pier.api.policy.POLICY"
    assert sorted(set(seen) - set(EXPECTED)) == [], "routes missing from EXPECTED here"


@pytest.mark.parametrize("role", [*ROLES, "other-project"])
def test_each_role_is_allowed_exactly_its_routes(up: PierProcess, role: str) -> None:
    token = make_token(up, "b", "admin") if role == "other-project" else make_token(up, "a", role)
    wrong = {}
    for method, path in operations(up):
        answer = call(up, token, method, path, project="a")
        allowed = answer.status_code not in (401, 403)
        if allowed != (role in EXPECTED.get((method, path), INSTALLATION)):
            wrong[f"{method} {path}"] = (answer.status_code, answer.text[:120])
        if not allowed:
            assert answer.status_code == 403, answer.text  # a valid token: never 401
            assert answer.json()["error"]["code"] == "forbidden"
    assert wrong == {}


def test_the_installation_admin_is_allowed_every_route(up: PierProcess) -> None:
    refused = {}
    for method, path in operations(up):
        answer = call(up, up.token, method, path, project="scratch")
        if answer.status_code in (401, 403):
            refused[f"{method} {path}"] = answer.text[:120]
    assert refused == {}


def test_a_viewer_sees_secret_names_never_their_values(up: PierProcess) -> None:
    with up.api() as api:
        put = api.put("/api/v1/projects/a/secrets/db", json={"value": {"password": "hunter2"}})
        assert put.status_code == 200, put.text
    viewer = make_token(up, "a", "viewer")
    with httpx.Client(base_url=up.url, trust_env=False) as client:
        listed = client.get(
            "/api/v1/projects/a/secrets", headers={"Authorization": f"Bearer {viewer}"}
        )
    assert listed.status_code == 200
    assert listed.json()["secrets"][0]["keys"] == ["password"]
    assert "hunter2" not in listed.text


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("members", {"principal": "tes*", "role": "caller"}, "principal"),
        ("service-accounts", {"name": "Bot", "role": "viewer"}, "name"),
        ("tokens", {"role": "caller", "principal": "a b"}, "principal"),
        ("tokens", {"role": "caller", "name": "-x"}, "name"),
    ],
)
def test_names_of_principals_and_tokens_are_checked(
    up: PierProcess, path: str, body: dict[str, str], field: str
) -> None:
    with up.api() as api:
        answer = api.post(f"/api/v1/projects/a/{path}", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field
