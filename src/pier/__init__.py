"""pier: a self-hosted inference deployment platform.

The SDK's public names live here (httpx style): ``pier.Client``, and the errors to catch,
``pier.NotFound``, ``pier.InvalidSpec``... The names from ``pier.client`` load on first use
(PEP 562): the API, the gateway and the model server import ``pier`` for ``__version__`` and
must not pull in the SDK with it.
"""

from __future__ import annotations

import importlib
from typing import Any

from pier.domain.errors import (
    AliasNotFound,
    BadRequest,
    BodyTooLarge,
    ConfigurationNotAllowed,
    ConfigurationNotFound,
    Conflict,
    Forbidden,
    IllegalTransition,
    InstanceNotFound,
    InvalidSpec,
    MethodNotAllowed,
    ModelInUse,
    ModelNotFound,
    NameTaken,
    NodeDeleting,
    NodeInUse,
    NodeNotFound,
    NotFound,
    PierError,
    ProjectNotFound,
    QuotaExceeded,
    RolloutNotFound,
    RolloutRunning,
    RuntimeUnavailable,
    StoreUnavailable,
    Unauthorized,
)

__version__ = "0.1.0"

_FROM_CLIENT = frozenset(
    {
        "Client",
        "ControlPlaneUnreachable",
        "GatewayUnreachable",
        "NodeCrashLooping",
        "NodeNotHealthy",
        "NodeProgress",
        "WaitTimedOut",
    }
)


def __getattr__(name: str) -> Any:
    if name in _FROM_CLIENT:
        value = getattr(importlib.import_module("pier.client"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pier' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_FROM_CLIENT})


__all__ = [
    "AliasNotFound",
    "BadRequest",
    "BodyTooLarge",
    "Client",
    "ConfigurationNotAllowed",
    "ConfigurationNotFound",
    "Conflict",
    "ControlPlaneUnreachable",
    "Forbidden",
    "GatewayUnreachable",
    "IllegalTransition",
    "InstanceNotFound",
    "InvalidSpec",
    "MethodNotAllowed",
    "ModelInUse",
    "ModelNotFound",
    "NameTaken",
    "NodeCrashLooping",
    "NodeDeleting",
    "NodeInUse",
    "NodeNotFound",
    "NodeNotHealthy",
    "NodeProgress",
    "NotFound",
    "PierError",
    "ProjectNotFound",
    "QuotaExceeded",
    "RolloutNotFound",
    "RolloutRunning",
    "RuntimeUnavailable",
    "StoreUnavailable",
    "Unauthorized",
    "WaitTimedOut",
    "__version__",
]
