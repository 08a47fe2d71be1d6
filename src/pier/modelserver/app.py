"""The HTTP adapter: a plain ASGI app over :class:`~pier.modelserver.dataplane.DataPlane`.

No framework on purpose. A small model answers in microseconds, so per-request
plumbing is the cost that matters: FastAPI/Starlette's routing, request objects and
middleware cost several times the inference itself (see the project's performance
notes). Here a request is one dict lookup or one ``split`` to route and one pass over
the headers. :meth:`ModelServerApp.handle` is shared by the two HTTP servers: the
built-in one (:mod:`pier.modelserver.protocol`, the default, which calls it from its
parser callbacks) and any ASGI server (``__call__``). It answers everything but
inference at once; an inference is handed to the model's worker threads (see
:meth:`~pier.modelserver.dataplane.DataPlane.submit`) and ``handle`` returns a future
of its response, so health, metadata and metrics answer while a model computes.

Routes (Triton's HTTP API):

=========================================================  ======  ====================
path                                                       method  answer
=========================================================  ======  ====================
``/v2/health/live``                                        GET     200 once serving
``/v2/health/ready``                                       GET     200 once the model is
                                                                   loaded and warm, else 503
``/v2``                                                    GET     server metadata
``/v2/models/{name}[/versions/{v}]``                       GET     model metadata
``/v2/models/{name}[/versions/{v}]/ready``                 GET     200, 503 while loading
``/v2/models/{name}[/versions/{v}]/infer``                 POST    inference
``/v2/models/{name}[/versions/{v}]/config``                GET     Triton model configuration
``/v2/models[/{name}[/versions/{v}]]/stats``               GET     Triton statistics
``/v2/repository/index``                                   POST    Triton repository index
``/v2/repository/models/{name}/load``                      POST    200: it is loaded
``/v2/repository/models/{name}/unload``                    POST    400: pier does not unload
``/metrics``                                               GET     Prometheus text
=========================================================  ======  ====================

``GET /v2`` lists the Triton extensions served (:data:`~.dataplane.EXTENSIONS`).

Every error is ``{"error": "..."}``: 400 bad input, 404 unknown model or path, 405
wrong method, 413 body too large, 503 not ready, 500 only for a model or server fault.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog

from pier.http import wire
from pier.modelserver.dataplane import Answer, DataPlane
from pier.modelserver.v2 import BadRequest, V2Error, error_body

log = structlog.get_logger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = wire.JSON
_BINARY = b"application/octet-stream"
_MODELS_PREFIX = "/v2/models/"
_REPOSITORY_PREFIX = "/v2/repository/"
_ENDPOINTS = frozenset({"infer", "metadata", "ready", "config", "stats"})
_MODEL_ENDPOINTS = ("infer", "ready", "config", "stats")
_HEADER_LENGTH = b"inference-header-content-length"
_CONTENT_ENCODING = b"content-encoding"
_WBITS = {b"gzip": 16 + zlib.MAX_WBITS, b"deflate": zlib.MAX_WBITS}
DEFAULT_MAX_BODY_BYTES = 16 * 2**20
"""The gateway's default body limit: a node has one limit for the whole path."""


class BodyTooLarge(V2Error):
    status = 413

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"request body is larger than {limit_bytes} bytes")


Response = tuple[int, bytes, bytes, int | None]
"""(status, body, content type, Inference-Header-Content-Length or None)."""
Reply = Response | asyncio.Future[Response]
"""A response now, or (inference) one to come."""


class ModelServerApp:
    """The V2 routes over one :class:`DataPlane`, as an ASGI app and as :meth:`handle`.

    :meth:`handle` is synchronous and never blocks: a response is computed inline,
    except an inference's, which comes later as a future. The raw protocol server
    (:mod:`pier.modelserver.protocol`) calls it straight from its parser callbacks, and
    the ASGI adapter only reads the body first.
    """

    def __init__(
        self, dataplane: DataPlane, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    ) -> None:
        self.dataplane = dataplane
        self.metrics = dataplane.metrics
        self.max_body_bytes = max_body_bytes
        self._static: dict[str, Callable[[], Response]] = {
            "/v2/health/live": lambda: (200, b'{"live":true}', _JSON, None),
            "/v2/health/ready": self._health_ready,
            "/v2": lambda: (200, self.dataplane.server_metadata, _JSON, None),
            "/metrics": self._metrics,
        }

    def handle(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        started_s: float,
    ) -> Reply:
        """Answer one request; ``started_s`` (``time.perf_counter()``) is its arrival."""
        if path.startswith(_MODELS_PREFIX):
            return self._model_request(method, path, headers, body, started_s)
        if path.startswith(_REPOSITORY_PREFIX):
            return self._repository_request(method, path[len(_REPOSITORY_PREFIX) :])
        handler = self._static.get(path.rstrip("/") or path)
        if handler is None:
            return 404, error_body(f"no route for {path}"), _JSON, None
        if method not in ("GET", "HEAD"):
            return 405, error_body(f"{method} is not allowed on {path}"), _JSON, None
        return handler()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            started_s = time.perf_counter()
            self.metrics.in_flight += 1
            try:
                body = await self._read_body(receive)
                if body is None:
                    response = self.too_large()
                else:
                    reply = self.handle(
                        scope["method"], scope["path"], scope["headers"], body, started_s
                    )
                    response = reply if isinstance(reply, tuple) else await reply
                await _send(send, *response)
            finally:
                self.metrics.in_flight -= 1
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)

    def _health_ready(self) -> Response:
        if self.dataplane.is_ready:
            return 200, b'{"ready":true}', _JSON, None
        return 503, b'{"ready":false}', _JSON, None

    def _metrics(self) -> Response:
        return 200, self.metrics.render(), self.metrics.content_type.encode(), None

    def _model_request(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        started_s: float,
    ) -> Reply:
        name, endpoint, version = _parse_model_path(path[len(_MODELS_PREFIX) :].split("/"))
        if name == "stats" and endpoint == "metadata" and self.dataplane.name != "stats":
            name, endpoint = "", "stats"  # /v2/models/stats: every model's statistics
        reply = self._model_answer(name, endpoint, version, method, headers, body)
        if not isinstance(reply, tuple):
            return self._when_answered(reply, name, started_s)
        label = endpoint if endpoint in _ENDPOINTS else "other"  # paths are user input
        self.metrics.observe_request(name, label, reply[0], time.perf_counter() - started_s)
        return reply

    def _when_answered(
        self, answer: asyncio.Future[Answer], name: str, started_s: float
    ) -> asyncio.Future[Response]:
        """The response to an inference once its answer (or error) has come."""
        response: asyncio.Future[Response] = asyncio.get_running_loop().create_future()

        def done(answer: asyncio.Future[Answer]) -> None:
            if answer.cancelled():
                reply = _error(503, "the inference was cancelled: the server is stopping")
            elif (exc := answer.exception()) is not None:
                reply = _error_response(exc, name, "infer")
            else:
                body, length = answer.result()
                reply = 200, body, (_JSON if length is None else _BINARY), length
            duration_s = time.perf_counter() - started_s
            self.metrics.observe_request(name, "infer", reply[0], duration_s)
            if not response.done():
                response.set_result(reply)

        answer.add_done_callback(done)
        return response

    def _model_answer(
        self,
        name: str,
        endpoint: str,
        version: str | None,
        method: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> Response | asyncio.Future[Answer]:
        dataplane = self.dataplane
        try:
            if endpoint == "infer":
                if method != "POST":
                    return 405, error_body("use POST for inference"), _JSON, None
                header_length, encoding = _infer_headers(headers)
                if encoding is not None:
                    body = self._decompress(body, encoding)
                return dataplane.submit(name, version, body, header_length)
            if method not in ("GET", "HEAD"):
                return 405, error_body(f"{method} is not allowed here"), _JSON, None
            if endpoint == "metadata":
                return 200, dataplane.model_metadata(name, version), _JSON, None
            if endpoint == "config":
                return 200, dataplane.model_config(name, version), _JSON, None
            if endpoint == "stats":
                return 200, dataplane.model_statistics(name or None, version), _JSON, None
            if endpoint == "ready":
                if dataplane.is_model_ready(name, version):
                    return 200, b'{"ready":true}', _JSON, None
                return 503, b'{"ready":false}', _JSON, None
            return 404, error_body(f"no route for /v2/models/{name}/{endpoint}"), _JSON, None
        except Exception as e:
            return _error_response(e, name, endpoint)

    def _repository_request(self, method: str, rest: str) -> Response:
        """Triton's model repository extension over the one model served here."""
        if method != "POST":
            return 405, error_body(f"use POST for /v2/repository/{rest}"), _JSON, None
        if rest.rstrip("/") == "index":
            return 200, self.dataplane.repository_index(), _JSON, None
        parts = rest.split("/")
        if len(parts) != 3 or parts[0] != "models" or parts[2] not in ("load", "unload"):
            return 404, error_body(f"no route for /v2/repository/{rest}"), _JSON, None
        name, action = parts[1], parts[2]
        if name != self.dataplane.name:
            return 404, error_body(f"model {name!r} not found"), _JSON, None
        if action == "load":
            return 200, b"{}", _JSON, None  # loaded when the server started
        message = f"pier does not unload model {name!r}: suspend or delete its node instead"
        return 400, error_body(message), _JSON, None

    def too_large(self) -> Response:
        """The answer to a body over ``max_body_bytes``, which adapters enforce."""
        return 413, error_body(BodyTooLarge(self.max_body_bytes).message), _JSON, None

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None when it is over ``max_body_bytes`` (then drained)."""
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            return body if len(body) <= self.max_body_bytes else None
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= self.max_body_bytes:  # past it, drain without keeping
                chunks.append(chunk)
        return b"".join(chunks) if size <= self.max_body_bytes else None

    def _decompress(self, body: bytes, encoding: bytes) -> bytes:
        wbits = _WBITS.get(encoding.strip().lower())
        if wbits is None:
            raise BadRequest(f"unsupported Content-Encoding {encoding.decode(errors='replace')}")
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(body, self.max_body_bytes)
        except zlib.error as e:
            raise BadRequest(f"cannot decompress the request body: {e}") from None
        if inflater.unconsumed_tail:
            raise BodyTooLarge(self.max_body_bytes)
        return out


def _error(status: int, message: str) -> Response:
    return status, error_body(message), _JSON, None


def _error_response(exc: BaseException, name: str, endpoint: str) -> Response:
    """A V2 error's own answer; anything else is a pier fault (500, logged)."""
    if isinstance(exc, V2Error):
        return _error(exc.status, exc.message)
    log.error("request failed", model=name, endpoint=endpoint, exc_info=exc)
    return _error(500, f"internal error: {type(exc).__name__}: {exc}")


def _parse_model_path(parts: list[str]) -> tuple[str, str, str | None]:
    """(model name, endpoint, version) from the path after ``/v2/models/``."""
    name = parts[0]
    version = None
    rest = parts[1:]
    if len(rest) >= 2 and rest[0] == "versions":
        version, rest = rest[1], rest[2:]
    if rest and rest[-1] == "":
        rest = rest[:-1]  # a trailing slash
    if not rest:
        return name, "metadata", version
    if len(rest) == 1 and rest[0] in _MODEL_ENDPOINTS:
        return name, rest[0], version
    return name, "/".join(rest), version


def _infer_headers(headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bytes | None]:
    header_length: int | None = None
    encoding: bytes | None = None
    for key, value in headers:
        if key == _HEADER_LENGTH:
            try:
                header_length = int(value)
            except ValueError:
                raise BadRequest("Inference-Header-Content-Length is not a number") from None
        elif key == _CONTENT_ENCODING and value.strip().lower() != b"identity":
            encoding = value
    return header_length, encoding


async def _send(
    send: Send, status: int, body: bytes, content_type: bytes, header_length: int | None = None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    if header_length is not None:
        headers.append((b"inference-header-content-length", b"%d" % header_length))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge lifespan events; loading is started by ``__main__``, not here."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
