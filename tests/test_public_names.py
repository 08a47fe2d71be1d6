"""`pier.__all__` is the SDK's public surface: changing it is a decision, not an accident."""

from __future__ import annotations

import subprocess
import sys

import pier


def test_public_names_are_pinned() -> None:
    assert sorted(pier.__all__) == [
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


def test_public_names_exist_and_errors_share_one_base() -> None:
    values = [getattr(pier, name) for name in pier.__all__]
    errors = [v for v in values if isinstance(v, type) and issubclass(v, Exception)]
    assert len(errors) > 10
    assert all(issubclass(cls, pier.PierError) for cls in errors)


def test_importing_pier_does_not_load_the_sdk() -> None:
    """The API, gateway and model server import `pier` for its version only."""
    code = "import sys, pier; pier.__version__; assert 'pier.client' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    from pier import Client  # and `from pier import` still finds the SDK's names

    assert Client is pier.Client
