"""Crash-loop backoff per node: exponential, reset once an instance turns Healthy.

Timestamps, not tick counts, so the delay does not depend on the loop period.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class CrashBackoff:
    base_s: float = 1.0
    max_s: float = 60.0
    failures: int = 0
    until: float = 0.0

    def record_failure(self, *, now: float) -> float:
        """Count one failure; return the delay before the next start."""
        self.failures += 1
        delay_s = float(min(self.max_s, self.base_s * 2 ** (self.failures - 1)))
        self.until = now + delay_s
        return delay_s

    def record_healthy(self) -> None:
        self.failures = 0
        self.until = 0.0

    @property
    def is_crash_looping(self) -> bool:
        return self.failures >= 3
