"""Errors of the SDK itself (pier unreachable, a wait given up), and the PierError an error
response from pier stands for."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Final

import httpx

from pier.domain.errors import ERRORS_BY_CODE, ERRORS_BY_TYPE, BodyTooLarge, PierError
from pier.domain.views import NodeView


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
def reaching(url: str, unreachable: Callable[[str], PierError]) -> Iterator[None]:
    """Turn httpx transport failures into PierErrors that name ``url``."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise unreachable(url) from exc
    except httpx.TimeoutException as exc:
        raise PierError(f"{url} did not answer in time ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise PierError(f"request to {url} failed: {exc or type(exc).__name__}") from exc
