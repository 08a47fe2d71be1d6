"""Failing ticks are logged once per kind of failure, not once per tick.

A store that stays locked for a minute would otherwise log 120 tracebacks; what an
operator needs is "store unavailable" when it starts and "ticks succeed again" when it
ends. The loop keeps ticking (and so retrying) in between; after a TemporaryError it
waits that error's delay first (at most the backoff's longest).
"""

from __future__ import annotations

import structlog

from pier.controller.incidents import describe_failure
from pier.domain.errors import StoreUnavailable
from pier.domain.retry import TemporaryError

log = structlog.get_logger("pier.controller")


class TickFailures:
    """The controller loop's failure state: logs its changes only."""

    def __init__(self) -> None:
        self._failing: str | None = None
        self._count = 0

    @property
    def is_failing(self) -> bool:
        return self._failing is not None

    @property
    def failed_ticks(self) -> int:
        """Ticks failed in a row."""
        return self._count

    def failed(self, exc: Exception) -> None:
        """Count a failed tick; log it if it fails differently from the previous one."""
        self._count += 1
        kind = _kind_of(exc)
        if kind == self._failing:
            return
        self._failing = kind
        if isinstance(exc, StoreUnavailable):
            log.warning("store unavailable; the controller retries every tick", reason=exc.reason)
        elif isinstance(exc, TemporaryError):  # expected to pass: no traceback
            log.warning("controller tick failed; retrying", error=describe_failure(exc),
                        delay_s=exc.delay_s)  # fmt: skip
        else:
            log.error("controller tick failed", error_type=type(exc).__name__, exc_info=exc)

    def succeeded(self) -> None:
        """A tick went through: log the recovery once after failures."""
        if self._failing is None:
            return
        log.info("controller ticks succeed again", failed_ticks=self._count)
        self._failing, self._count = None, 0


def _kind_of(exc: Exception) -> str:
    if isinstance(exc, StoreUnavailable):
        return "store_unavailable"
    first_line = (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"
