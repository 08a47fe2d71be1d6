"""A private route admits a caller only with a token the route table grants that project
(or an installation admin's), whichever way the project is named (path, ``x-pier-project``,
``x-folder-id``); a token's expiry is checked by the gateway's own clock, so it holds with
no control plane at all (these gateways read a routes file)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import httpx
from gateway_processes import (
    TOKEN,
    Gateway,
    Upstream,
    alias,
    node,
    table,
    wait_until,
    write_routes,
)

from pier.domain.routes import RouteTable
from pier.domain.specs import Access

TEAM_TOKEN = "team-caller-token"
SOON_TOKEN = "team-token-expiring-soon"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def routes(upstreams: dict[str, Upstream], *, soon_expires: float, version: int) -> RouteTable:
    plain = table(
        node("private", upstreams["a"].endpoint, access=Access.PRIVATE, project="team"),
        node("private", upstreams["b"].endpoint, access=Access.PRIVATE, project="other"),
        aliases=(
            alias("secured", ("private", 100), access=Access.PRIVATE, project="team"),
            alias("secured", ("private", 100), access=Access.PRIVATE, project="other"),
        ),
        version=version,
    )
    grants = {digest(TEAM_TOKEN): None, digest(SOON_TOKEN): soon_expires}
    return plain.model_copy(update={"project_tokens": {"team": grants}})


def start(gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]) -> Gateway:
    return gateway_factory(routes(upstreams, soon_expires=time.time() + 3600, version=1))


def test_a_project_token_calls_its_project_only_however_the_project_is_named(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    gateway = start(gateway_factory, upstreams)
    with gateway.client() as client:
        own = [
            client.get("/team/nodes/private/x", headers=bearer(TEAM_TOKEN)),
            client.get("/x", headers={**bearer(TEAM_TOKEN), "x-node-id": "private",
                                      "x-pier-project": "team"}),
            client.get("/x", headers={**bearer(TEAM_TOKEN), "x-node-id": "private",
                                      "x-folder-id": "team"}),
            client.get("/team/aliases/secured/x", headers=bearer(TEAM_TOKEN)),
            client.get("/x", headers={**bearer(TEAM_TOKEN), "x-node-alias": "secured",
                                      "x-folder-id": "team"}),
        ]  # fmt: skip
        other = [
            client.get("/other/nodes/private/x", headers=bearer(TEAM_TOKEN)),
            client.get("/x", headers={**bearer(TEAM_TOKEN), "x-node-id": "private",
                                      "x-pier-project": "other"}),
            client.get("/x", headers={**bearer(TEAM_TOKEN), "x-node-id": "private",
                                      "x-folder-id": "other"}),
            client.get("/other/nodes/missing/x", headers=bearer(TEAM_TOKEN)),
            client.get("/other/aliases/secured/x", headers=bearer(TEAM_TOKEN)),
            client.get("/x", headers={**bearer(TEAM_TOKEN), "x-node-alias": "secured",
                                      "x-pier-project": "other"}),
        ]  # fmt: skip
        admin = client.get("/other/nodes/private/x", headers=bearer(TOKEN))
    assert [r.status_code for r in own] == [200] * 5
    assert [r.status_code for r in other] == [401] * 6
    assert admin.status_code == 200


def test_an_expired_token_is_refused_by_the_gateways_clock_without_a_control_plane(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    gateway = start(gateway_factory, upstreams)
    write_routes(gateway.routes_file, routes(upstreams, soon_expires=time.time() + 2, version=2))
    wait_until(lambda: gateway.routes_version() == 2, what="the gateway to load version 2")
    with gateway.client() as client:
        assert client.get("/team/nodes/private/x", headers=bearer(SOON_TOKEN)).status_code == 200
        deadline = time.monotonic() + 10
        answer: httpx.Response | None = None
        while time.monotonic() < deadline:
            answer = client.get("/team/nodes/private/x", headers=bearer(SOON_TOKEN))
            if answer.status_code != 200:
                break
            time.sleep(0.1)
        assert answer is not None and answer.status_code == 401
        assert answer.json()["code"] == "unauthorized"
        assert client.get("/team/nodes/private/x", headers=bearer(TEAM_TOKEN)).status_code == 200
