"""Hermetic environment for CLI and SDK tests, and a fake control plane for the SDK's mapping.

The fake (httpx.MockTransport) only stands in for HTTP responses when a test checks how the
SDK reads them; tests that use it have `fake` in their names. End-to-end tests run `pier up`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from pier.cli import context
from pier.client import Client

PIER_ENV = ("PIER_TOKEN", "PIER_URL", "PIER_DATA_DIR", "PIER_PROJECT", "PIER_GATEWAY_URL")
PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def hermetic_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No PIER_* settings or proxies from the developer's shell; cwd without a .pier."""
    for name in (*PIER_ENV, *PROXY_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@dataclass
class FakePier:
    """Routes (METHOD, path) to canned responses and records every request."""

    routes: dict[tuple[str, str], Handler | httpx.Response | Any] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, method: str, path: str, answer: Handler | httpx.Response | Any) -> None:
        self.routes[(method, path)] = answer

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            return error_response(404, "not_found", f"no fake route {request.url.path}")
        if callable(answer):
            return answer(request)
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    def client(self, **kwargs: Any) -> Client:
        kwargs.setdefault("token", "t0ken")
        return Client("http://pier.test", transport=httpx.MockTransport(self.handle), **kwargs)


def error_response(status: int, code: str, message: str, **extra: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, **extra}})


@pytest.fixture
def fake_pier() -> FakePier:
    return FakePier()


@pytest.fixture
def cli_on_fake_pier(fake_pier: FakePier, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePier]:
    """Make the CLI's client talk to ``fake_pier``."""

    def client(url: Any, token: Any, project: Any, **kwargs: Any) -> Client:
        kwargs["gateway_url"] = kwargs.get("gateway_url") or "http://gateway.test"
        return Client(
            url or "http://pier.test",
            token or "t0ken",
            project,
            transport=httpx.MockTransport(fake_pier.handle),
            **kwargs,
        )

    monkeypatch.setattr(context, "Client", client)
    yield fake_pier


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


CREATED_AT = "2025-01-01T00:00:00+00:00"


def node_json(*, spec: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A whole node as the API answers it (model node iris), with ``fields`` changed and
    ``spec`` fields merged into its spec."""
    node: dict[str, Any] = {
        "project": "default",
        "name": "iris",
        "kind": "model",
        "spec": {"model": "iris", "model_version": 1, **(spec or {})},
        "pinned_image": None,
        "runtime": "local",
        "status": "Healthy",
        "generation": 1,
        "instances": {"healthy": 1, "total": 1, "target": 1},
        "routed": True,
        "message": None,
        "crash_looping": False,
        "created_at": CREATED_AT,
        "updated_at": CREATED_AT,
        **fields,
    }
    return node


def instance_json(**fields: Any) -> dict[str, Any]:
    """A whole instance as the API answers it, with ``fields`` changed."""
    return {
        "id": "iris-3fa9c1",
        "node": "iris",
        "status": "Healthy",
        "since": CREATED_AT,
        "endpoint": "http://127.0.0.1:41235",
        "restarts": 0,
        "last_error": None,
        "generation": 1,
        "runtime": "local",
        "pid": 48213,
        "container_id": None,
        "limits_applied": [],
        "limits_not_applied": [],
        "created_at": CREATED_AT,
        **fields,
    }


def event_json(**fields: Any) -> dict[str, Any]:
    return {
        "id": 1,
        "time": CREATED_AT,
        "kind": "node_created",
        "message": "node iris created by admin",
        "instance": None,
        "actor": "admin",
        **fields,
    }


def model_json(**fields: Any) -> dict[str, Any]:
    return {
        "name": "iris",
        "version": 1,
        "format": "onnx",
        "sha256": "ab" * 32,
        "size_bytes": 4,
        "created_at": CREATED_AT,
        "metadata": {},
        **fields,
    }
