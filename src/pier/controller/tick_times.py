"""How long the controller's recent reconcile passes (ticks) took, for the API."""

from __future__ import annotations

from collections import deque

from pier.domain.views import ControllerFigures

KEPT_TICKS = 1024
"""The last ticks whose durations are kept."""


class TickTimes:
    def __init__(self, kept: int = KEPT_TICKS) -> None:
        self._seconds: deque[float] = deque(maxlen=kept)
        self.ticks = 0
        """Ticks since the controller started."""

    def add(self, seconds: float) -> None:
        self._seconds.append(seconds)
        self.ticks += 1

    def figures(self) -> ControllerFigures:
        ordered = sorted(self._seconds)
        return ControllerFigures(
            ticks=self.ticks,
            tick_p50_ms=_quantile(ordered, 0.5),
            tick_p99_ms=_quantile(ordered, 0.99),
            tick_max_ms=ordered[-1] * 1000.0 if ordered else None,
        )


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0
