"""What every group of the Client's calls shares: the connection (``ClientBase``), the typed
answer of a response, and the fields of a spec to send."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from pier.client.connection import DEFAULT_PROJECT, DEFAULT_TIMEOUT_S, resolve_token, resolve_url
from pier.client.errors import ControlPlaneUnreachable, error_from_response, reaching
from pier.domain.aliases import AliasSpec
from pier.domain.configurations import Configuration
from pier.domain.errors import PierError
from pier.domain.specs import NodeSpec
from pier.domain.views import ConfigurationList, Info

JSON = dict[str, Any]
AnswerT = TypeVar("AnswerT", bound=BaseModel)


class ClientBase:
    """The connection to pier that every group of calls uses: the control plane's HTTP
    client, the token, the project, and the gateway's URL."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        project: str = DEFAULT_PROJECT,
        *,
        gateway_url: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = resolve_url(url)
        self.project = project
        self.timeout_s = timeout_s
        self._token_arg = token
        self._token: str | None = None
        gateway = gateway_url or os.environ.get("PIER_GATEWAY_URL")
        self._gateway_url = gateway.rstrip("/") if gateway else None
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s, transport=transport)

    # -- plumbing -------------------------------------------------------------------

    @property
    def token(self) -> str:
        """The bearer token, resolved on first use (see ``resolve_token``)."""
        if self._token is None:
            self._token = resolve_token(self._token_arg)
        return self._token

    @property
    def gateway_url(self) -> str:
        """Where inference goes: explicit, else $PIER_GATEWAY_URL, else what pier reports."""
        if self._gateway_url is None:
            self._gateway_url = self.info().gateway_url.rstrip("/")
        return self._gateway_url

    def _project_path(self, *parts: str) -> str:
        tail = "".join(f"/{quote(part, safe='')}" for part in parts)
        return f"/api/v1/projects/{quote(self.project, safe='')}{tail}"

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        with reaching(self.url, ControlPlaneUnreachable):
            response = self._http.request(method, path, headers=headers, **kwargs)
        if response.is_error:
            raise error_from_response(response)
        return response

    @contextlib.contextmanager
    def _stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        headers = {"Authorization": f"Bearer {self.token}"}
        with (
            reaching(self.url, ControlPlaneUnreachable),
            self._http.stream(method, path, headers=headers, **kwargs) as response,
        ):
            if response.is_error:
                response.read()
                raise error_from_response(response)
            yield response

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- platform -------------------------------------------------------------------

    def info(self) -> Info:
        """pier's version, gateway URL and runtimes."""
        return typed_answer(self._request("GET", "/api/v1/info"), Info)

    def configurations(self) -> list[Configuration]:
        """The configurations (compute profiles) a node can use."""
        answer = typed_answer(self._request("GET", "/api/v1/configurations"), ConfigurationList)
        return answer.configurations


def typed_answer(response: httpx.Response, model: type[AnswerT]) -> AnswerT:
    """The response's JSON body as ``model``; a PierError if it is not one."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        raise PierError(
            f"unexpected answer from {response.request.url}: {where}: {problem['msg']} "
            f"(not a {model.__name__}; is this pier's control plane, of this version?)"
        ) from None


def spec_fields(spec: NodeSpec | AliasSpec | Mapping[str, Any] | None) -> JSON:
    """What to send of a spec: a NodeSpec's (AliasSpec's) fields as set, or the given
    fields."""
    if isinstance(spec, AliasSpec):
        return spec.model_dump(mode="json")
    if isinstance(spec, NodeSpec):
        fields: JSON = spec.model_dump(mode="json", exclude_unset=True)
        return fields
    return dict(spec or {})
