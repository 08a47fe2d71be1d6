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


def runtime_for(spec: NodeSpec, *, container_runtime: str = CONTAINER_RUNTIME) -> str:
    """The runtime a new node with ``spec`` is bound to: the one it names, else a process
    for a model node and ``container_runtime`` (docker, or swarm under `pier up --runtime
    swarm`) for an image node."""
    if spec.runtime is not None:
        return spec.runtime
    return container_runtime if spec.image is not None else PROCESS_RUNTIME
