"""Runtimes: where instances run. The registry loads a runtime's module only when it is
chosen, so optional dependencies (a Docker client, a cluster client) are imported lazily."""

from __future__ import annotations

import importlib
from typing import Any, Final, cast

from pier.domain.errors import InvalidSpec
from pier.runtimes.base import InstanceSpec, InstanceStats, Observed, Runtime

__all__ = ["RUNTIMES", "InstanceSpec", "InstanceStats", "Observed", "Runtime", "load_runtime"]

RUNTIMES: Final[dict[str, str]] = {
    "local": "pier.runtimes.local:LocalRuntime",
    "docker": "pier.runtimes.docker:DockerRuntime",
    "swarm": "pier.runtimes.swarm:SwarmRuntime",
}
"""Runtime name -> "module:Class"; the module is imported only by load_runtime()."""


def load_runtime(name: str, **kwargs: Any) -> Runtime:
    """Import and build the runtime called ``name``; InvalidSpec naming ``runtime`` if unknown."""
    try:
        target = RUNTIMES[name]
    except KeyError:
        raise InvalidSpec(
            "runtime", f"unknown runtime {name!r}; choose one of {', '.join(sorted(RUNTIMES))}"
        ) from None
    module_name, _, class_name = target.partition(":")
    runtime_class = getattr(importlib.import_module(module_name), class_name)
    return cast(Runtime, runtime_class(**kwargs))
