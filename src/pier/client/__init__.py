"""The Python SDK: a synchronous client for pier's control plane and gateway, on httpx.

Answers come back as the typed models the server answers with (pier.domain.views:
``NodeView``, ``InstanceView``, ``ModelVersion``...), the same ones /openapi.json shows.
Errors come back as the classes the server raised (``pier.NodeNotFound``,
``pier.InvalidSpec`` with ``.field``, ...): the server sends ``{"error": {"code", "type",
"message"}}`` and ``type`` maps back through ``ERRORS_BY_TYPE`` (else ``code`` through
``ERRORS_BY_CODE``, else the HTTP status), so callers catch pier's own names, never HTTP
statuses; the tree is in pier.domain.errors. The CLI is built on this package only, which
keeps the SDK sufficient.

One module per group of calls (``nodes``, ``models``, ``aliases``, ``access``,
``inference``), each a class over ``base.ClientBase``; ``Client`` is all of them.
"""

from __future__ import annotations

from pier.client.access import AccessCalls
from pier.client.aliases import AliasCalls
from pier.client.base import ClientBase
from pier.client.connection import (
    DEFAULT_PROJECT,
    DEFAULT_TIMEOUT_S,
    DEFAULT_URL,
    resolve_token,
    resolve_url,
    token_path,
)
from pier.client.errors import (
    ControlPlaneUnreachable,
    GatewayUnreachable,
    NodeCrashLooping,
    NodeNotHealthy,
    WaitTimedOut,
    error_from_response,
    error_message,
    make_error,
)
from pier.client.inference import InferenceCalls
from pier.client.models import ModelCalls
from pier.client.nodes import NodeCalls, NodeProgress
from pier.client.uploads import FORMATS, RUNS_CODE, detect_format

__all__ = [
    "DEFAULT_PROJECT",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_URL",
    "FORMATS",
    "RUNS_CODE",
    "Client",
    "ControlPlaneUnreachable",
    "GatewayUnreachable",
    "NodeCrashLooping",
    "NodeNotHealthy",
    "NodeProgress",
    "WaitTimedOut",
    "detect_format",
    "error_from_response",
    "error_message",
    "make_error",
    "resolve_token",
    "resolve_url",
    "token_path",
]


class Client(NodeCalls, ModelCalls, AliasCalls, AccessCalls, InferenceCalls, ClientBase):
    """pier's control plane (REST) and gateway (inference) for one project."""
