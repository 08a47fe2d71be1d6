"""From facts to statuses: what an instance's status is, given what was just seen.

Level-triggered: the status follows from the runtime's phase and the probe window now,
not from a history of events, so a restarted controller reaches the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from pier.domain.instance_status import InstanceStatus
from pier.domain.specs import HealthCheck

S = InstanceStatus


@dataclass(frozen=True, slots=True)
class ProbeWindow:
    """The latest health-probe results of one instance."""

    connected: bool = False
    """A TCP connection to the instance succeeded at least once."""
    answered: bool = False
    """The instance answered the health check at all (any HTTP status)."""
    passes: int = 0
    """Consecutive passing probes."""
    failures: int = 0
    """Consecutive failing probes."""
    last_error: str | None = None
    checks: int = 0
    """Probes run so far, whatever their outcome."""
    skipped: int = 0
    """Rounds not probed because the gateway's traffic showed the instance answering
    (each counts as a pass: see passive.py)."""
    unexpected_error: str | None = None
    """Why the latest probe could not run at all (a bug or a strange endpoint, not a
    failing instance); it is retried with a backoff."""


def observe_status(
    previous: InstanceStatus, *, running: bool, window: ProbeWindow, health: HealthCheck
) -> InstanceStatus:
    """The status an instance has now. An exited instance keeps its status: the plan
    replaces it and moves it to Deleting."""
    if previous is S.DELETING or not running:
        return previous
    if previous in (S.HEALTHY, S.UNHEALTHY):
        if window.failures >= health.unhealthy_threshold:
            return S.UNHEALTHY
        if window.passes >= health.healthy_threshold:
            return S.HEALTHY
        return previous
    if window.passes >= health.healthy_threshold:
        return S.HEALTHY
    if window.answered:
        return S.PREPARING
    if window.connected:
        return S.STARTED
    return S.CREATED
