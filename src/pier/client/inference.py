"""The Client's calls through the gateway: a request to a node or an alias."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from pier.client.base import ClientBase
from pier.client.errors import GatewayUnreachable, reaching
from pier.domain.errors import Unauthorized


class InferenceCalls(ClientBase):
    """Requests to nodes and aliases through the gateway."""

    def target_url(self, target: str, path: str = "/") -> str:
        """The gateway URL of ``path`` on a node (``NAME``) or an alias (``alias/NAME``)."""
        kind, name = "nodes", target.removeprefix("node/")
        if target.startswith("alias/"):
            kind, name = "aliases", target.removeprefix("alias/")
        project = quote(self.project, safe="")
        return f"{self.gateway_url}/{project}/{kind}/{quote(name, safe='')}/{path.lstrip('/')}"

    def call(
        self,
        target: str,
        path: str = "/",
        *,
        method: str | None = None,
        json: Any = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        """Send a request to a node or alias through the gateway; any status comes back."""
        url = self.target_url(target, path)
        all_headers = dict(headers or {})
        with contextlib.suppress(Unauthorized):  # public nodes need no token
            all_headers.setdefault("Authorization", f"Bearer {self.token}")
        if method is None:
            method = "GET" if json is None and data is None else "POST"
        timeout = httpx.Timeout(self.timeout_s, read=timeout_s)
        with reaching(self.gateway_url, GatewayUnreachable):
            return self._http.request(
                method, url, json=json, content=data, headers=all_headers, timeout=timeout
            )
