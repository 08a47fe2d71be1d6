"""Proof that pier's reconcile loop has run, for tests that then check that it changed
nothing: a marker node is created and deleted, and only the loop removes a deleted node
from the store, in a tick that reconciles every node."""

from __future__ import annotations

from tests.conftest import PierProcess


def wait_for_ticks(pier: PierProcess, *spec: str, ticks: int = 2) -> None:
    """Return once the loop has reconciled every node at least ``ticks`` more times.
    ``spec``: how the marker node is made (`pier node create` options), e.g.
    ``--model iris`` or ``--image IMAGE --port 8080``; it runs no instance."""
    for n in range(ticks):
        name = f"tick-marker-{n}"
        pier.cli("node", "create", name, *spec, "--min", "0")
        pier.cli("node", "delete", name, "--wait", "--wait-timeout", "60")
