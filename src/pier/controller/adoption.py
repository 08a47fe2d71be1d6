"""What a start of the controller found of the instances a previous `pier up` left."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Adoption:
    """Counts from ``Controller.adopt()``: instances kept, and those it cleaned up."""

    instances: int = 0
    """Running instances matched to a node in the store, and kept."""
    nodes: int = 0
    """Nodes those instances belong to."""
    removed: int = 0
    """Running instances of nodes the store no longer has: stopped."""
    lost: int = 0
    """Instances in the store that no runtime runs any more: forgotten (and replaced)."""

    def describe(self) -> str:
        """``adopted 2 instances of 1 node, removed 0``."""
        text = (
            f"adopted {_count(self.instances, 'instance')} of {_count(self.nodes, 'node')}, "
            f"removed {self.removed}"
        )
        return text + (f", {self.lost} gone" if self.lost else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
