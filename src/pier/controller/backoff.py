"""Exponential backoff: between instance starts of a crash-looping node, and between
retries of background work that failed (a pull, a probe, a removal).

Timestamps, not tick counts, so the delay does not depend on the loop period. A
TemporaryError says itself when to try again (domain/retry.py); the backoff caps it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pier.domain.retry import TemporaryError


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

    def retry_after(self, delay_s: float, *, now: float) -> float:
        """A temporary failure: the next try after its own delay, at most ``max_s``. Not a
        failure in a row: the delay does not double, nor does a node crash-loop of it."""
        delay_s = min(max(delay_s, 0.0), self.max_s)
        self.until = now + delay_s
        return delay_s

    def after(self, exc: BaseException, *, now: float) -> float:
        """The delay before the next try after ``exc``: a temporary error's own (see
        retry_after), else one failure more in a row."""
        if isinstance(exc, TemporaryError):
            return self.retry_after(exc.delay_s, now=now)
        return self.record_failure(now=now)

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
