"""Which runtime a node's instances run on. Decided once, when the node is created, and
stored with it: a node never moves to another runtime, and while its runtime is missing
its instances run nowhere."""

from __future__ import annotations

from typing import Final

from pier.domain.specs import NodeSpec

PROCESS_RUNTIME: Final = "local"
"""Model nodes: pier's model server as a (sandboxed) process on this machine."""
CONTAINER_RUNTIME: Final = "docker"
"""Image nodes, a model in an image included."""


def runtime_for(spec: NodeSpec) -> str:
    """The runtime a new node with ``spec`` is bound to."""
    return CONTAINER_RUNTIME if spec.image is not None else PROCESS_RUNTIME
