"""What the gateway answers when it cannot forward a request.

Every error is JSON in the V2 inference protocol's error format, ``{"error": "message"}``,
so Triton and KServe clients can print it, with pier's details beside the message:
``{"error", "code", "type", "project", "node" | "alias"}`` naming the route the caller
used (an alias error also names the node it had picked, if any), and an error's own
details (a 413's ``limit_bytes`` and ``setting``).

    code                      HTTP
    bad_request               400   the request is not valid HTTP/1.1 (no Host, a header twice...)
    unauthorized              401   private route without a valid bearer token
    not_found                 404   unknown node, alias or path
    method_not_allowed        405   CONNECT: the gateway is no forward proxy
    request_timeout           408   the head or the next part of the body came too late
    body_too_large            413   request body over the limit (before any instance sees it)
    request_line_too_long     414   request line over max_request_line_bytes
    headers_too_large         431   headers over max_header_bytes or more than max_headers
    upgrade_not_supported     501   a protocol upgrade (WebSocket) was asked for
    response_too_large        502   response body over the limit
    upstream_connect_failed   502   no instance accepted a connection
    upstream_disconnected     502   an instance dropped the connection after the request was sent
    bad_upstream_response     502   an instance answered with invalid HTTP
    no_healthy_instance       503   no Healthy instance, even after a short wait for routes
    node_suspended            503   the node is suspended (``pier node resume`` brings it back)
    too_many_connections      503   the worker holds max_connections busy client connections
    upstream_timeout          504   the node's timeout_s passed before the response was complete
    http_version_not_supported 505  HTTP other than 1.0 and 1.1

Every answer carries the request's ``x-request-id``, and through an alias the node it had
picked in ``x-pier-node``. The 4xx/5xx the gateway finds in a
request head (405, 408, 414, 431, 501, 505 and a 400) close the connection after them.
"""

from __future__ import annotations

from typing import Literal

import orjson

from pier.domain.errors import NotFound, PierError
from pier.http import wire


class BadRequest(PierError):
    code = "bad_request"
    http_status = 400


class MethodNotAllowed(PierError):
    code = "method_not_allowed"
    http_status = 405
    allow = b"allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n"

    def __init__(self, method: str) -> None:
        super().__init__(f"{method} is not supported: the gateway is not a forward proxy")


class RequestTimeout(PierError):
    code = "request_timeout"
    http_status = 408

    def __init__(self, setting: Literal["header_timeout_s", "body_timeout_s"], limit_s: float):
        if setting == "header_timeout_s":
            what = f"the request head was not complete {limit_s:g} s after its first byte"
        else:
            what = f"no more of the request body came for {limit_s:g} s"
        super().__init__(f"{what} (gateway {setting})")


class RequestLineTooLong(PierError):
    code = "request_line_too_long"
    http_status = 414

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            f"the request line is over {limit_bytes} bytes (gateway max_request_line_bytes)"
        )


class HeadersTooLarge(PierError):
    code = "headers_too_large"
    http_status = 431

    def __init__(self, setting: Literal["max_header_bytes", "max_headers"], limit: int) -> None:
        if setting == "max_header_bytes":
            what = f"the request headers are over {limit} bytes"
        else:
            what = f"the request has more than {limit} headers"
        super().__init__(f"{what} (gateway {setting})")


class UpgradeNotSupported(PierError):
    code = "upgrade_not_supported"
    http_status = 501

    def __init__(self) -> None:
        super().__init__("protocol upgrades (such as WebSocket) are not supported by the gateway")


class VersionNotSupported(PierError):
    code = "http_version_not_supported"
    http_status = 505

    def __init__(self, version: str | None) -> None:
        what = "this HTTP version" if version is None else f"HTTP/{version}"
        super().__init__(f"{what} is not supported: use HTTP/1.1 or HTTP/1.0")


class NoRoute(NotFound):
    def __init__(self, path: str) -> None:
        super().__init__(
            f"no route for {path!r}: use /{{project}}/nodes/{{node}}/..., "
            "/{project}/aliases/{alias}/... or an x-node-id / x-node-alias header"
        )


class ResponseTooLarge(PierError):
    code = "response_too_large"
    http_status = 502

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"response body is over the limit of {limit_bytes} bytes")


class UpstreamConnectFailed(PierError):
    code = "upstream_connect_failed"
    http_status = 502

    def __init__(self, tried: int, reason: str) -> None:
        super().__init__(f"could not connect to any of {tried} instance(s): {reason}")


class UpstreamDisconnected(PierError):
    code = "upstream_disconnected"
    http_status = 502

    def __init__(self, instance: str) -> None:
        super().__init__(
            f"instance {instance!r} closed the connection before the response was complete"
        )


class BadUpstreamResponse(PierError):
    code = "bad_upstream_response"
    http_status = 502

    def __init__(self, instance: str, reason: str) -> None:
        super().__init__(f"instance {instance!r} sent an invalid HTTP response: {reason}")


class NoHealthyInstance(PierError):
    code = "no_healthy_instance"
    http_status = 503

    def __init__(self, waited_s: float) -> None:
        super().__init__(f"no Healthy instance to take the request (waited {waited_s:g} s)")


class NodeSuspended(PierError):
    code = "node_suspended"
    http_status = 503

    def __init__(self, project: str, node: str, *, is_public: bool) -> None:
        super().__init__(
            f"node {node!r} in project {project!r} is suspended: it runs no instance until "
            f"it is resumed (pier node resume {node})"
        )
        self.is_public = is_public
        """Anyone may learn that a public node is suspended; of a private one, only a
        caller with a valid token."""


class TooManyConnections(PierError):
    code = "too_many_connections"
    http_status = 503

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the gateway has {limit} client connections open, all busy (its max_connections, "
            "PIER_GATEWAY__MAX_CONNECTIONS); try again shortly"
        )


class UpstreamTimeout(PierError):
    code = "upstream_timeout"
    http_status = 504

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"no complete response within the node's timeout of {timeout_s:g} s")


def split_key(key: bytes) -> tuple[str, str]:
    """A route key, ``b"project/name"`` -> ``("project", "name")``."""
    project, _, name = key.decode("latin-1").partition("/")
    return project, name


def render_error(
    error: PierError,
    *,
    key: bytes | None = None,
    is_alias: bool = False,
    node: str | None = None,
    keep_alive: bool = True,
    http11: bool = True,
    headers: bytes = b"",
) -> bytes:
    """The whole HTTP response for ``error``, naming the route the caller used (``key``,
    a node's or an alias's) and, for an alias, the node it had picked (``node``);
    ``headers`` are more header lines (each ending in CRLF), e.g. the ``x-request-id``."""
    detail: dict[str, object] = error.to_dict()
    detail = {"error": detail.pop("message"), **detail}
    if key is not None:
        project, name = split_key(key)
        detail["project"] = project
        if is_alias:
            detail["alias"] = name
            if node is not None:
                detail["node"] = node
        else:
            detail["node"] = name
    body = orjson.dumps(detail)
    if isinstance(error, MethodNotAllowed):
        headers += error.allow
    return wire.simple_response(
        error.http_status,
        b"application/json",
        body,
        keep_alive=keep_alive,
        http11=http11,
        headers=headers,
    )
