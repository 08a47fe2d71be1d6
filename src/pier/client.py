"""The Python SDK: a synchronous client for pier's control plane and gateway, on httpx.

Answers come back as the typed models the server answers with (pier.domain.views:
``NodeView``, ``InstanceView``, ``ModelVersion``...), the same ones /openapi.json shows.
Errors come back as the classes the server raised (``pier.NodeNotFound``,
``pier.InvalidSpec`` with ``.field``, ...): the server sends ``{"error": {"code", "type",
"message"}}`` and ``type`` maps back through ``ERRORS_BY_TYPE`` (else ``code`` through
``ERRORS_BY_CODE``, else the HTTP status), so callers catch pier's own names, never HTTP
statuses; the tree is in pier.domain.errors. The CLI is built on this module only, which
keeps the SDK sufficient.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from pier.domain.aliases import AliasSpec
from pier.domain.audit import AuditEntry, AuditPage
from pier.domain.configurations import Configuration
from pier.domain.errors import (
    ERRORS_BY_CODE,
    ERRORS_BY_TYPE,
    BodyTooLarge,
    InvalidSpec,
    NotFound,
    PierError,
    Unauthorized,
)
from pier.domain.node_status import NodeStatus
from pier.domain.quotas import ProjectLimits, ProjectLimitsView
from pier.domain.rollouts import RolloutPhase
from pier.domain.specs import NodeSpec
from pier.domain.views import (
    AliasList,
    AliasView,
    ConfigurationList,
    EventList,
    EventView,
    Info,
    InstanceList,
    InstanceStats,
    InstanceView,
    KeyRotated,
    MemberList,
    MemberView,
    ModelList,
    ModelsDeleted,
    ModelVersion,
    ModelVersions,
    NodeList,
    NodeView,
    ProjectList,
    ProjectView,
    RolloutView,
    SecretInfo,
    SecretList,
    SecretWritten,
    SeriesMetric,
    SeriesView,
    ServiceAccountList,
    ServiceAccountView,
    StatsList,
    TokenCreated,
    TokenInfo,
    TokenList,
)

DEFAULT_URL: Final = "http://127.0.0.1:8080"
DEFAULT_PROJECT: Final = "default"
DEFAULT_TIMEOUT_S: Final = 30.0
UPLOAD_CHUNK_BYTES: Final = 1 << 20
FOLLOW_PAGE: Final = 100
"""Events read per poll while following a node or waiting for it."""
UPLOAD_READ_TIMEOUT_S: Final = 300.0
"""How long the server may take to check an uploaded model before it answers."""

FORMATS_BY_SUFFIX: Final[Mapping[str, str]] = {
    ".onnx": "onnx",
    ".joblib": "sklearn",
    ".pkl": "sklearn",
    ".pickle": "sklearn",
}
FORMATS: Final = ("onnx", "sklearn", "python", "triton")
DIRECTORY_FORMATS: Final = frozenset({"python", "triton"})
"""Formats pushed as a directory (uploaded as a gzip tar)."""
PICKLE_WARNING: Final = (
    "a scikit-learn model is a pickle, and loading a pickle runs code from it: "
    "push it with trust=True (--trust) only if you trust where it came from"
)
PYTHON_MODEL_WARNING: Final = (
    "a Python model runs its model.py when pier checks it and in every instance: "
    "push it with trust=True (--trust) only if you trust where it came from"
)
TRITON_MODEL_WARNING: Final = (
    "a Triton model directory runs its backend's code (a model.py) in every instance: "
    "push it with trust=True (--trust) only if you trust where it came from"
)
RUNS_CODE: Final[Mapping[str, str]] = {
    "sklearn": PICKLE_WARNING,
    "python": PYTHON_MODEL_WARNING,
    "triton": TRITON_MODEL_WARNING,
}
"""Formats whose loading runs code from the model: pushing them needs trust."""

JSON = dict[str, Any]
AnswerT = TypeVar("AnswerT", bound=BaseModel)


class ControlPlaneUnreachable(PierError):
    """Nothing answers at the control-plane URL."""

    code = "unreachable"
    error_type = "control_plane_unreachable"
    http_status = 503

    def __init__(self, url: str) -> None:
        super().__init__(f"cannot reach pier at {url}: is `pier up` running?")
        self.url = url


class GatewayUnreachable(PierError):
    """Nothing answers at the gateway URL."""

    code = "unreachable"
    error_type = "gateway_unreachable"
    http_status = 503

    def __init__(self, url: str) -> None:
        super().__init__(
            f"cannot reach the pier gateway at {url}: is `pier up` running? "
            "(set the gateway URL with --gateway-url or PIER_GATEWAY_URL)"
        )
        self.url = url


class NodeNotHealthy(PierError):
    """Waiting for a node gave up; ``node`` is the last state seen."""

    error_type = "node_not_healthy"

    def __init__(self, name: str, reason: str, node: NodeView | None = None) -> None:
        super().__init__(f"node {name!r} {reason}")
        self.node = node


class NodeCrashLooping(NodeNotHealthy):
    error_type = "node_crash_looping"

    def __init__(self, name: str, node: NodeView) -> None:
        why = node.message or "its instances keep exiting"
        super().__init__(name, f"is crash looping: {why}", node)


class WaitTimedOut(NodeNotHealthy):
    error_type = "wait_timed_out"

    def __init__(self, name: str, goal: str, timeout_s: float, node: NodeView | None) -> None:
        last = ""
        if node is not None:
            last = f" (last status: {node.status}"
            last += f": {node.message})" if node.message else ")"
        super().__init__(name, f"did not {goal} within {timeout_s:g}s{last}", node)


@dataclass(frozen=True, slots=True)
class NodeProgress:
    """One poll of ``Client.wait_node``: the node, its instances, events not seen before."""

    node: NodeView
    instances: list[InstanceView]
    new_events: list[EventView] = field(default_factory=list)


def resolve_url(url: str | None = None, *, env: Mapping[str, str] | None = None) -> str:
    """The control-plane URL: explicit, else $PIER_URL, else http://127.0.0.1:8080."""
    env = os.environ if env is None else env
    return (url or env.get("PIER_URL") or DEFAULT_URL).rstrip("/")


def token_path(*, env: Mapping[str, str] | None = None) -> Path:
    """Where `pier up` writes the admin token: <$PIER_DATA_DIR or ./.pier>/admin.token."""
    env = os.environ if env is None else env
    return Path(env.get("PIER_DATA_DIR") or ".pier") / "admin.token"


def resolve_token(token: str | None = None, *, env: Mapping[str, str] | None = None) -> str:
    """The bearer token: explicit, else $PIER_TOKEN, else the admin.token `pier up` wrote."""
    env = os.environ if env is None else env
    if token:
        return token
    if env.get("PIER_TOKEN"):
        return env["PIER_TOKEN"]
    path = token_path(env=env)
    with contextlib.suppress(OSError):
        if text := path.read_text(encoding="utf-8").strip():
            return text
    raise Unauthorized(
        f"no token: pass --token, set PIER_TOKEN, or run where `pier up` keeps its data; "
        f"`pier up` writes the admin token to {path.absolute()} on first start "
        "(set PIER_DATA_DIR if its data dir is elsewhere)"
    )


def detect_format(path: Path) -> str:
    """The model format told by a path: .onnx, .joblib/.pkl/.pickle, or a directory (a
    Triton model directory when it holds a config.pbtxt, else a Python model)."""
    if path.is_dir():
        return "triton" if (path / "config.pbtxt").is_file() else "python"
    if fmt := FORMATS_BY_SUFFIX.get(path.suffix.lower()):
        return fmt
    raise InvalidSpec(
        "format",
        f"cannot tell the model format of {str(path)!r} from its name; "
        f"give it as one of {', '.join(FORMATS)} (--format)",
    )


def error_message(response: httpx.Response) -> str | None:
    """The message of a JSON error body: pier's ``{"error": {"code", "message"}}``, or the
    V2 inference protocol's ``{"error": "..."}``; None for any other body."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return error if isinstance(error, str) and error else None


def error_from_response(response: httpx.Response) -> PierError:
    """The PierError that an error response from pier stands for."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        exc = make_error(
            str(error.get("code") or ""),
            error["message"],
            field=error.get("field"),
            error_type=str(error.get("type") or ""),
            http_status=response.status_code,
        )
        if isinstance(exc, BodyTooLarge):
            limit, setting = error.get("limit_bytes"), error.get("setting")
            exc.limit_bytes = limit if isinstance(limit, int) else None
            exc.setting = setting if isinstance(setting, str) else None
        return exc
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        # A validation error that reached FastAPI's default handler.
        loc = [str(part) for part in detail[0].get("loc", ()) if part != "body"]
        name = ".".join(loc) or "spec"
        return make_error("invalid_spec", f"{name}: {detail[0].get('msg')}", field=name)
    message = detail if isinstance(detail, str) else response.text.strip()
    return make_error(
        "",
        f"HTTP {response.status_code} from {response.request.url}: "
        f"{message or response.reason_phrase}",
        http_status=response.status_code,
    )


def make_error(
    code: str,
    message: str,
    *,
    field: str | None = None,
    error_type: str = "",
    http_status: int = 500,
) -> PierError:
    """An instance of the PierError class for ``error_type`` (when it belongs to ``code``),
    else the most general one for ``code``, else the one for the HTTP status."""
    cls = ERRORS_BY_TYPE.get(error_type)
    if cls is None or cls.code != code:
        cls = ERRORS_BY_CODE.get(code) or _ERRORS_BY_STATUS.get(http_status, PierError)
    return cls.from_wire(message, field=field)


_ERRORS_BY_STATUS: Final = {cls.http_status: cls for cls in reversed(ERRORS_BY_CODE.values())}


@contextlib.contextmanager
def _reaching(url: str, unreachable: Callable[[str], PierError]) -> Iterator[None]:
    """Turn httpx transport failures into PierErrors that name ``url``."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise unreachable(url) from exc
    except httpx.TimeoutException as exc:
        raise PierError(f"{url} did not answer in time ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise PierError(f"request to {url} failed: {exc or type(exc).__name__}") from exc


class Client:
    """pier's control plane (REST) and gateway (inference) for one project."""

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
        with _reaching(self.url, ControlPlaneUnreachable):
            response = self._http.request(method, path, headers=headers, **kwargs)
        if response.is_error:
            raise error_from_response(response)
        return response

    @contextlib.contextmanager
    def _stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        headers = {"Authorization": f"Bearer {self.token}"}
        with (
            _reaching(self.url, ControlPlaneUnreachable),
            self._http.stream(method, path, headers=headers, **kwargs) as response,
        ):
            if response.is_error:
                response.read()
                raise error_from_response(response)
            yield response

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- platform -------------------------------------------------------------------

    def info(self) -> Info:
        """pier's version, gateway URL and runtimes."""
        return _answer(self._request("GET", "/api/v1/info"), Info)

    def configurations(self) -> list[Configuration]:
        """The configurations (compute profiles) a node can use."""
        answer = _answer(self._request("GET", "/api/v1/configurations"), ConfigurationList)
        return answer.configurations

    # -- models ---------------------------------------------------------------------

    def push_model(
        self,
        path: str | os.PathLike[str],
        name: str,
        *,
        fmt: str | None = None,
        trust: bool = False,
        example: bytes | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ModelVersion:
        """Upload a model file (or a Python or Triton model directory) as a new version of
        ``name``;
        ``example``: a V2 JSON inference request the model accepts, for its warm-up."""
        path = Path(path)
        if not path.exists():
            raise InvalidSpec("path", f"{str(path)!r} does not exist")
        fmt = fmt or detect_format(path)
        if fmt in RUNS_CODE and not trust:
            raise InvalidSpec("trust", RUNS_CODE[fmt])
        head = example or b""
        headers = {"Content-Type": "application/octet-stream"}
        if example:
            headers["x-pier-example-length"] = str(len(example))
        with _upload_body(path, fmt) as (body, size, filename):
            response = self._request(
                "POST",
                self._project_path("models", name),
                params={"format": fmt, "trust": str(trust).lower(), "filename": filename},
                content=_read_chunks(body, size, on_progress, head=head),
                headers={**headers, "Content-Length": str(len(head) + size)},
                timeout=httpx.Timeout(
                    self.timeout_s, read=max(self.timeout_s, UPLOAD_READ_TIMEOUT_S)
                ),
            )
        return _answer(response, ModelVersion)

    def list_models(self) -> list[ModelVersion]:
        """Every version of every model in the project."""
        return _answer(self._request("GET", self._project_path("models")), ModelList).models

    def get_model(self, name: str) -> ModelVersions:
        """A model with all its versions."""
        return _answer(self._request("GET", self._project_path("models", name)), ModelVersions)

    def delete_model(self, name: str, version: int | None = None) -> ModelsDeleted:
        """Delete a model's versions (all, or one); ``pier.ModelInUse`` while a node uses
        them."""
        params = {} if version is None else {"version": version}
        response = self._request("DELETE", self._project_path("models", name), params=params)
        return _answer(response, ModelsDeleted)

    # -- nodes ----------------------------------------------------------------------

    def create_node(
        self, name: str, spec: NodeSpec | Mapping[str, Any] | None = None, **fields: Any
    ) -> NodeView:
        """Create a node from spec fields (model or image, port, min_instances, ...); the
        server fills in the defaults of what is not given."""
        body = {"name": name, "spec": {**_spec_fields(spec), **fields}}
        response = self._request("POST", self._project_path("nodes"), json=body)
        return _answer(response, NodeView)

    def list_nodes(self) -> list[NodeView]:
        """The nodes of the project, by name (every page of them)."""
        nodes: list[NodeView] = []
        after: str | None = None
        while True:
            page = self.node_page(after=after)
            nodes += page.nodes
            if page.next_after is None:
                return nodes
            after = page.next_after

    def node_page(self, *, after: str | None = None, limit: int | None = None) -> NodeList:
        """One page of the project's nodes: those named after ``after`` (the previous
        page's ``next_after``), ``limit`` at most (default: the server's page size)."""
        params = {k: v for k, v in {"after": after, "limit": limit}.items() if v is not None}
        response = self._request("GET", self._project_path("nodes"), params=params)
        return _answer(response, NodeList)

    def get_node(self, name: str) -> NodeView:
        """A node: spec (secrets as '***'), status, instance counts, message."""
        return _answer(self._request("GET", self._project_path("nodes", name)), NodeView)

    def update_node(
        self, name: str, spec: Mapping[str, Any] | None = None, **fields: Any
    ) -> NodeView:
        """Change some spec fields; pier replaces instances as needed. The server merges
        the change into the spec as a JSON Merge Patch (RFC 7396): a field given replaces
        its value, None removes it (back to its default), maps (``env``, ``secret_env``)
        and groups (``health``, ``telemetry``) merge key by key, so
        ``update_node("web", env={"B": "2"})`` keeps every other variable and
        ``env={"A": None}`` removes A."""
        body = {"spec": {**(spec or {}), **fields}}
        response = self._request("PATCH", self._project_path("nodes", name), json=body)
        return _answer(response, NodeView)

    def delete_node(self, name: str) -> NodeView:
        """Start deleting a node; it disappears once its instances are gone."""
        return _answer(self._request("DELETE", self._project_path("nodes", name)), NodeView)

    def suspend_node(self, name: str) -> NodeView:
        """Suspend a node: its instances are drained and stopped, the spec kept; the
        gateway answers 503 for it until ``resume_node``. Suspending twice is harmless."""
        path = self._project_path("nodes", name, "suspend")
        return _answer(self._request("POST", path), NodeView)

    def resume_node(self, name: str) -> NodeView:
        """Resume a suspended node: it comes back to its minimum (``wait_node`` waits for
        it). Resuming a running node is harmless."""
        path = self._project_path("nodes", name, "resume")
        return _answer(self._request("POST", path), NodeView)

    def wait_node_stopped(
        self, name: str, *, timeout_s: float = 120.0, poll_s: float = 0.5
    ) -> NodeView:
        """Poll until a suspended node has no instance left."""
        deadline = time.monotonic() + timeout_s
        while True:
            node = self.get_node(name)
            if node.instances.total == 0:
                return node
            if time.monotonic() >= deadline:
                raise WaitTimedOut(name, "stop its instances", timeout_s, node)
            time.sleep(poll_s)

    def instances(self, name: str) -> list[InstanceView]:
        """The instances of a node with their statuses."""
        path = self._project_path("nodes", name, "instances")
        return _answer(self._request("GET", path), InstanceList).instances

    def events(self, name: str, *, limit: int = 100, after: int | None = None) -> list[EventView]:
        """The latest events of a node, oldest first; with ``after`` (an event id), the
        first ``limit`` events after that one."""
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        path = self._project_path("nodes", name, "events")
        events = _answer(self._request("GET", path, params=params), EventList).events
        # A control plane older than `after` sends the newest events whatever it is asked.
        return events if after is None else [e for e in events if e.id > after]

    def last_event_id(self, name: str) -> int:
        """The id of the node's newest event (0 if none): ``after`` for what comes next."""
        events = self.events(name, limit=1)
        return events[-1].id if events else 0

    def follow_events(
        self, name: str, *, limit: int = 100, after: int | None = None, poll_s: float = 1.0
    ) -> Iterator[EventView]:
        """The node's latest ``limit`` events (or those after ``after``), then each new one
        as it happens; ends when the node is gone."""
        cursor = after
        while True:
            try:
                events = self.events(name, limit=max(limit, FOLLOW_PAGE), after=cursor)
            except NotFound:
                if cursor is None:
                    raise
                return  # deleted while followed
            if cursor is None:
                events = events[-limit:]
            yield from events
            cursor = events[-1].id if events else (cursor or 0)
            time.sleep(poll_s)

    def stats(self, name: str) -> list[InstanceStats]:
        """CPU percent and memory bytes of each instance of a node, measured now."""
        response = self._request("GET", self._project_path("nodes", name, "stats"))
        return _answer(response, StatsList).instances

    def series(
        self, name: str, metric: SeriesMetric | str, *, since: float = 300.0, step: int = 5
    ) -> SeriesView:
        """pier's own samples of a node's ``metric`` over the last ``since`` seconds, in
        points of ``step`` seconds or more (see ``SeriesMetric``)."""
        params = {"metric": str(metric), "since": since, "step": step}
        response = self._request("GET", self._project_path("nodes", name, "series"), params=params)
        return _answer(response, SeriesView)

    def metrics(self, name: str) -> str:
        """Prometheus text of the node's Healthy instances, labelled node and instance."""
        return self._request("GET", self._project_path("nodes", name, "metrics")).text

    # -- aliases --------------------------------------------------------------------

    def create_alias(
        self, name: str, spec: AliasSpec | Mapping[str, Any] | None = None, **fields: Any
    ) -> AliasView:
        """Create an alias from spec fields: ``nodes=[{"node": "iris-v1", "share": 90},
        {"node": "iris-v2", "share": 10}]`` (shares sum to 100; one node may leave its
        share out and takes the rest), ``mirrors``, ``sticky_header``, ``header_routes``,
        ``metadata``, ``access``."""
        body = {"name": name, "spec": {**_spec_fields(spec), **fields}}
        response = self._request("POST", self._project_path("aliases"), json=body)
        return _answer(response, AliasView)

    def list_aliases(self) -> list[AliasView]:
        """The aliases of the project."""
        return _answer(self._request("GET", self._project_path("aliases")), AliasList).aliases

    def get_alias(self, name: str) -> AliasView:
        """An alias: its spec and, per node, its share, the share it takes now and why."""
        return _answer(self._request("GET", self._project_path("aliases", name)), AliasView)

    def alias_series(
        self, name: str, metric: SeriesMetric | str, *, since: float = 300.0, step: int = 5
    ) -> SeriesView:
        """pier's own samples of an alias's requests: a line for the alias (``node``
        None) and one per node behind it."""
        params = {"metric": str(metric), "since": since, "step": step}
        path = self._project_path("aliases", name, "series")
        return _answer(self._request("GET", path, params=params), SeriesView)

    def set_alias(
        self, name: str, spec: Mapping[str, Any] | None = None, **fields: Any
    ) -> AliasView:
        """Change some spec fields, as a JSON Merge Patch: ``set_alias("prod",
        nodes=[{"node": "iris-v2"}])`` moves all traffic to iris-v2 and keeps the rest
        (``nodes``, ``mirrors`` and ``header_routes`` are replaced whole; None removes a
        field). Every gateway worker switches at once."""
        body = {"spec": {**(spec or {}), **fields}}
        response = self._request("PATCH", self._project_path("aliases", name), json=body)
        return _answer(response, AliasView)

    def replace_alias(self, name: str, spec: AliasSpec | Mapping[str, Any]) -> AliasView:
        """Replace the alias's whole spec (what it leaves out goes back to its default)."""
        body = {"spec": _spec_fields(spec)}
        response = self._request("PUT", self._project_path("aliases", name), json=body)
        return _answer(response, AliasView)

    def delete_alias(self, name: str) -> None:
        """Delete an alias; its nodes stay."""
        self._request("DELETE", self._project_path("aliases", name))

    def wait_alias_routed(
        self, name: str, *, timeout_s: float = 30.0, poll_s: float = 0.1
    ) -> AliasView:
        """Return once every gateway worker serves the alias as it is stored now."""
        deadline = time.monotonic() + timeout_s
        while not (alias := self.get_alias(name)).routed:
            if time.monotonic() >= deadline:
                raise PierError(f"alias {name!r} was not published within {timeout_s:g} s")
            time.sleep(poll_s)
        return alias

    # -- secrets --------------------------------------------------------------------

    def put_secret(self, name: str, value: Mapping[str, str]) -> SecretWritten:
        """Create or replace a project secret (e.g. registry username and password)."""
        path = self._project_path("secrets", name)
        return _answer(self._request("PUT", path, json={"value": dict(value)}), SecretWritten)

    def list_secrets(self) -> list[SecretInfo]:
        """Names and keys of the project's secrets; values never come back."""
        return _answer(self._request("GET", self._project_path("secrets")), SecretList).secrets

    def delete_secret(self, name: str) -> None:
        """Delete a project secret."""
        self._request("DELETE", self._project_path("secrets", name))

    # -- projects and access ----------------------------------------------------------

    def create_project(self, name: str) -> ProjectView:
        """Create a project (installation admin)."""
        return _answer(self._request("POST", "/api/v1/projects", json={"name": name}), ProjectView)

    def list_projects(self) -> list[ProjectView]:
        """The projects this client's token has a role in."""
        return _answer(self._request("GET", "/api/v1/projects"), ProjectList).projects

    def get_project(self, name: str | None = None) -> ProjectView:
        """A project (default: this client's) and how much it holds."""
        path = f"/api/v1/projects/{quote(name or self.project, safe='')}"
        return _answer(self._request("GET", path), ProjectView)

    def delete_project(self, name: str) -> None:
        """Delete an empty project (installation admin); Conflict names what it still has."""
        self._request("DELETE", f"/api/v1/projects/{quote(name, safe='')}")

    def add_member(self, principal: str, role: str) -> MemberView:
        """Give a user (made on first use) or service account ``role`` in the project."""
        body = {"principal": principal, "role": role}
        return _answer(self._request("POST", self._project_path("members"), json=body), MemberView)

    def list_members(self) -> list[MemberView]:
        return _answer(self._request("GET", self._project_path("members")), MemberList).members

    def remove_member(self, principal: str) -> None:
        """Take the member's role away: their tokens for the project stop working."""
        self._request("DELETE", self._project_path("members", principal))

    def create_service_account(self, name: str, role: str) -> ServiceAccountView:
        path, body = self._project_path("service-accounts"), {"name": name, "role": role}
        return _answer(self._request("POST", path, json=body), ServiceAccountView)

    def list_service_accounts(self) -> list[ServiceAccountView]:
        answer = self._request("GET", self._project_path("service-accounts"))
        return _answer(answer, ServiceAccountList).service_accounts

    def delete_service_account(self, name: str) -> None:
        """Delete a service account with its tokens."""
        self._request("DELETE", self._project_path("service-accounts", name))

    def create_token(
        self,
        role: str,
        *,
        name: str | None = None,
        principal: str | None = None,
        expires_in_s: int | None = None,
    ) -> TokenCreated:
        """A new token with ``role`` in the project; ``.token`` is its value, shown once."""
        body = {"role": role, "name": name, "principal": principal, "expires_in_s": expires_in_s}
        answer = self._request("POST", self._project_path("tokens"), json=body)
        return _answer(answer, TokenCreated)

    def list_tokens(self) -> list[TokenInfo]:
        """The project's tokens, never their values."""
        return _answer(self._request("GET", self._project_path("tokens")), TokenList).tokens

    def revoke_token(self, token_id: int) -> None:
        self._request("DELETE", self._project_path("tokens", str(token_id)))

    # -- allowed configurations and quotas ------------------------------------------

    def project_limits(self) -> ProjectLimitsView:
        """The project's allowed configurations and quotas, with what its nodes use."""
        return _answer(self._request("GET", self._project_path("limits")), ProjectLimitsView)

    def set_project_limits(self, limits: ProjectLimits | Mapping[str, Any]) -> ProjectLimitsView:
        """Replace the project's allowed configurations and quotas (None: no limit)."""
        body = limits if isinstance(limits, ProjectLimits) else ProjectLimits(**limits)
        response = self._request("PUT", self._project_path("limits"), json=body.model_dump())
        return _answer(response, ProjectLimitsView)

    # -- audit log ------------------------------------------------------------------

    def audit(
        self,
        *,
        project: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> AuditPage:
        """One page of the audit log, newest first; filters given narrow it. Pass the
        page's ``next_before`` as ``before`` for the next one."""
        given = {
            "project": project, "actor": actor, "action": action, "outcome": outcome,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None, "before": before, "limit": limit,
        }  # fmt: skip
        params = {k: v for k, v in given.items() if v is not None}
        return _answer(self._request("GET", "/api/v1/audit", params=params), AuditPage)

    def iter_audit(self, **filters: Any) -> Iterator[AuditEntry]:
        """Every audit entry matching ``filters`` (those of ``audit``), newest first."""
        before = filters.pop("before", None)
        while True:
            page = self.audit(**filters, before=before)
            yield from page.entries
            if page.next_before is None:
                return
            before = page.next_before

    def rotate_secrets_key(self) -> KeyRotated:
        """Seal every secret value again with a new key (the installation's, not a project's)."""
        return _answer(self._request("POST", "/api/v1/secrets/rotate-key"), KeyRotated)

    def logs(
        self, name: str, instance: str | None = None, follow: bool = False, tail: int | None = None
    ) -> Iterator[str]:
        """Log lines of a node's instances (each prefixed ``[instance-id]``) or of one."""
        params: dict[str, Any] = {"follow": str(follow).lower()}
        if instance is not None:
            params["instance"] = instance
        if tail is not None:
            params["tail"] = tail
        timeout = httpx.Timeout(self.timeout_s, read=None) if follow else self.timeout_s
        path = self._project_path("nodes", name, "logs")
        with self._stream("GET", path, params=params, timeout=timeout) as response:
            yield from response.iter_lines()

    def wait_node(
        self,
        name: str,
        *,
        timeout_s: float = 300.0,
        poll_s: float = 0.5,
        generation: int | None = None,
        on_progress: Callable[[NodeProgress], None] | None = None,
        after: int | None = None,
    ) -> NodeView:
        """Poll until the node is Healthy and the gateway routes it (a request sent next is
        served); NodeCrashLooping or WaitTimedOut if it is not. With ``generation`` (what
        ``update_node`` returned), also until no instance of an older spec is left: the
        rolling update is done. ``on_progress`` gets the events after ``after`` (an event
        id, see ``last_event_id``), or all the latest ones first."""
        deadline = time.monotonic() + timeout_s
        cursor = after
        while True:
            node = self.get_node(name)
            instances = self.instances(name) if on_progress or generation else []
            if on_progress is not None:
                events = self.events(name, limit=FOLLOW_PAGE, after=cursor)
                cursor = events[-1].id if events else (cursor or 0)
                on_progress(NodeProgress(node, instances, events))
            healthy = node.status is NodeStatus.HEALTHY
            older = generation and any(i.generation < generation for i in instances)
            if healthy and node.routed and not older:
                return node
            if node.crash_looping:
                raise NodeCrashLooping(name, node)
            if node.status is NodeStatus.DELETING:
                raise NodeNotHealthy(name, "is being deleted", node)
            if node.status is NodeStatus.SUSPENDED:
                raise NodeNotHealthy(name, f"is suspended (pier node resume {name})", node)
            if time.monotonic() >= deadline:
                goal = "become Healthy"
                if healthy:
                    goal = "replace its older instances" if older else "get routed by the gateway"
                raise WaitTimedOut(name, goal, timeout_s, node)
            time.sleep(poll_s)

    def wait_node_deleted(
        self, name: str, *, timeout_s: float = 120.0, poll_s: float = 0.5
    ) -> None:
        """Poll until the node is gone (its instances are deleted)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                node = self.get_node(name)
            except NotFound:
                return
            if time.monotonic() >= deadline:
                raise WaitTimedOut(name, "disappear", timeout_s, node)
            time.sleep(poll_s)

    # -- rollouts -------------------------------------------------------------------

    def start_rollout(
        self,
        alias: str,
        *,
        to_node: str,
        steps: Sequence[int],
        bake_s: float,
        max_error_rate: float,
        max_p95_ms: float | None = None,
        **fields: Any,
    ) -> RolloutView:
        """Move an alias's traffic to ``to_node`` by ``steps`` (percents), each held
        ``bake_s``; it rolls back by itself when the new node's error rate (a fraction:
        0.01 is 1%) or p95 latency is over its limit. ``pier.RolloutRunning`` if one runs."""
        body = {"to_node": to_node, "steps": list(steps), "bake_s": bake_s,
                "max_error_rate": max_error_rate, "max_p95_ms": max_p95_ms, **fields}  # fmt: skip
        path = self._project_path("aliases", alias, "rollout")
        return _answer(self._request("POST", path, json=body), RolloutView)

    def get_rollout(self, alias: str) -> RolloutView:
        """An alias's latest rollout: step, figures, decision and why."""
        path = self._project_path("aliases", alias, "rollout")
        return _answer(self._request("GET", path), RolloutView)

    def abort_rollout(self, alias: str) -> RolloutView:
        """Roll an alias's running rollout back now."""
        path = self._project_path("aliases", alias, "rollout", "abort")
        return _answer(self._request("POST", path), RolloutView)

    def wait_rollout(
        self,
        alias: str,
        *,
        timeout_s: float = 3600.0,
        poll_s: float = 0.5,
        on_progress: Callable[[RolloutView], None] | None = None,
    ) -> RolloutView:
        """Poll until the alias's rollout is completed or rolled back; its last state."""
        deadline = time.monotonic() + timeout_s
        while True:
            rollout = self.get_rollout(alias)
            if on_progress is not None:
                on_progress(rollout)
            if rollout.phase is not RolloutPhase.RUNNING:
                return rollout
            if time.monotonic() >= deadline:
                raise WaitTimedOut(f"alias/{alias}", "finish its rollout", timeout_s, None)
            time.sleep(poll_s)

    # -- inference ------------------------------------------------------------------

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
        with _reaching(self.gateway_url, GatewayUnreachable):
            return self._http.request(
                method, url, json=json, content=data, headers=all_headers, timeout=timeout
            )


def _answer(response: httpx.Response, model: type[AnswerT]) -> AnswerT:
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


def _spec_fields(spec: NodeSpec | AliasSpec | Mapping[str, Any] | None) -> JSON:
    """What to send of a spec: a NodeSpec's (AliasSpec's) fields as set, or the given
    fields."""
    if isinstance(spec, AliasSpec):
        return spec.model_dump(mode="json")
    if isinstance(spec, NodeSpec):
        fields: JSON = spec.model_dump(mode="json", exclude_unset=True)
        return fields
    return dict(spec or {})


@contextlib.contextmanager
def _upload_body(path: Path, fmt: str) -> Iterator[tuple[IO[bytes], int, str]]:
    """The bytes to upload: the file itself, or a gzip tar of a model directory."""
    if fmt not in DIRECTORY_FORMATS or (path.is_file() and path.suffix in (".gz", ".tgz")):
        with path.open("rb") as file:
            yield file, path.stat().st_size, path.name
        return
    with tempfile.TemporaryFile() as archive:
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            members = sorted(path.iterdir()) if path.is_dir() else [path]
            for member in members:
                tar.add(member, arcname=member.name, filter=_skip_caches)
        size = archive.tell()
        archive.seek(0)
        yield archive, size, f"{path.stem if path.is_file() else path.name}.tar.gz"


def _skip_caches(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    parts = Path(info.name).parts
    if "__pycache__" in parts or info.name.endswith(".pyc") or ".git" in parts:
        return None
    return info


def _read_chunks(
    file: IO[bytes], size: int, on_progress: Callable[[int, int], None] | None, *, head: bytes = b""
) -> Iterator[bytes]:
    if head:
        yield head
    sent = 0
    if on_progress is not None:
        on_progress(0, size)
    while chunk := file.read(UPLOAD_CHUNK_BYTES):
        yield chunk
        sent += len(chunk)
        if on_progress is not None:
            on_progress(sent, size)
