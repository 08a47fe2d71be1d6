"""What the gateway answers when it cannot forward a request.

Every error is JSON ``{"error": {"code", "message", "project", "node" | "alias"}}`` naming
the route the caller used (an alias error also names the node it had picked, if any).

    code                      HTTP
    bad_request               400   the request is not valid HTTP/1.1
    unauthorized              401   private route without a valid bearer token
    not_found                 404   unknown node, alias or path
    body_too_large            413   request body over the limit (before any instance sees it)
    response_too_large        502   response body over the limit
    upstream_connect_failed   502   no instance accepted a connection
    upstream_disconnected     502   an instance dropped the connection after the request was sent
    bad_upstream_response     502   an instance answered with invalid HTTP
    no_healthy_instance       503   no Healthy instance, even after a short wait for routes
    upstream_timeout          504   the node's timeout_s passed before the response was complete
"""

from __future__ import annotations

import orjson

from pier.domain.errors import NotFound, PierError
from pier.gateway import wire


class BadRequest(PierError):
    code = "bad_request"
    http_status = 400


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


class UpstreamTimeout(PierError):
    code = "upstream_timeout"
    http_status = 504

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"no complete response within the node's timeout of {timeout_s:g} s")


def render_error(
    error: PierError,
    *,
    project: str | None = None,
    node: str | None = None,
    alias: str | None = None,
    keep_alive: bool = True,
    http11: bool = True,
) -> bytes:
    """The whole HTTP response for ``error``, naming the project, alias and node when known."""
    detail: dict[str, str] = error.to_dict()
    if project is not None:
        detail["project"] = project
    if alias is not None:
        detail["alias"] = alias
    if node is not None:
        detail["node"] = node
    body = orjson.dumps({"error": detail})
    return wire.simple_response(
        error.http_status, b"application/json", body, keep_alive=keep_alive, http11=http11
    )
