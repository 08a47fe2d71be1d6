"""Exponential backoff: between instance starts of a crash-looping node, and between
retries of background work that failed (a pull, a probe, a removal).

Timestamps, not tick counts, so the delay does not depend on the loop period.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Backoff:
    """The delay doubles per failure in a row, up to ``max_s``; a success resets it."""

    base_s: float = 1.0
    max_s: float = 60.0
    failures: int = 0
    until: float = 0.0

    def record_failure(self, *, now: float) -> float:
        """Count one failure; return the delay before the next try."""
        self.failures += 1
        delay_s = float(min(self.max_s, self.base_s * 2 ** min(self.failures - 1, 62)))
        self.until = now + delay_s
        return delay_s

    def reset(self) -> None:
        self.failures = 0
        self.until = 0.0


@dataclass(slots=True)
class CrashBackoff(Backoff):
    """Per node: reset once an instance turns Healthy."""

    def record_healthy(self) -> None:
        self.reset()

    @property
    def is_crash_looping(self) -> bool:
        return self.failures >= 3
