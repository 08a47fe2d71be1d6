"""How many instances a node should run, from the requests it has in flight. Pure: the
controller feeds it the gateway's in-flight integral and the time.

The gateway counts, per node, the integral of requests in flight over time
(``pier_gateway_in_flight_seconds_total``). Its increase over the last ``window_s``
divided by the window is the node's average concurrency, and

    recommended = ceil(average concurrency / spec.target_in_flight)

clamped to ``[min_instances, max_instances]``. Scaling up follows the recommendation at
once; scaling down only once every recommendation of the last ``scale_down_delay_s`` was
lower (the target is the highest of them), so a short lull does not stop instances a
burst will need again. Without fresh load figures (the gateway is restarting) the target
holds.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from pier.domain.specs import NodeSpec

MIN_WINDOW_S = 1.0
"""Below this much history the average is too noisy to act on."""


@dataclass(frozen=True, slots=True)
class AutoscaleSettings:
    window_s: float = 6.0
    """The average concurrency is taken over this long."""
    scale_down_delay_s: float = 60.0
    """How long the load must stay lower before instances are stopped."""


@dataclass(frozen=True, slots=True)
class Decision:
    target: int
    concurrency: float | None
    """The average concurrency the decision was based on (None: no fresh figures)."""
    wanted: int | None = None
    """Set when a ceiling (a project quota) held the target below what load asks for."""


class NodeScaler:
    """The target instance count of one node."""

    def __init__(self, settings: AutoscaleSettings, *, start: int, now: float) -> None:
        """``start``: the count to hold until load figures say otherwise (the instances a
        restarted control plane adopted, or the node's minimum)."""
        self._settings = settings
        self._samples: deque[tuple[float, float]] = deque()
        self._recommended: deque[tuple[float, int]] = deque([(now, start)])
        self.target = start

    def observe(self, now: float, in_flight_seconds: float) -> None:
        """One reading of the node's in-flight integral."""
        if self._samples and in_flight_seconds < self._samples[-1][1]:
            self._samples.clear()  # the gateway restarted: its counter began again
        self._samples.append((now, in_flight_seconds))
        horizon = now - self._settings.window_s
        while len(self._samples) > 2 and self._samples[1][0] <= horizon:
            self._samples.popleft()

    def concurrency(self) -> float | None:
        """Average requests in flight over the window, or None without enough history."""
        if len(self._samples) < 2:
            return None
        (t0, v0), (t1, v1) = self._samples[0], self._samples[-1]
        if t1 - t0 < min(MIN_WINDOW_S, self._settings.window_s):
            return None
        return max(0.0, (v1 - v0) / (t1 - t0))

    def decide(self, spec: NodeSpec, now: float, *, ceiling: int | None = None) -> Decision:
        """The target count now; call once per reconcile, after ``observe``. ``ceiling``:
        the most instances the project's quotas leave room for (never below the minimum)."""
        low, high = spec.min_instances, spec.effective_max
        if ceiling is not None:
            high = max(low, min(high, ceiling))
        concurrency = self.concurrency()
        if concurrency is None:
            recommended = self.target
        else:
            # a hair below the boundary counts as on it: 8.0000001 / 4 is 2 instances
            recommended = math.ceil(concurrency / spec.target_in_flight - 1e-6)
        wanted = min(max(recommended, low), spec.effective_max)
        recommended = min(max(recommended, low), high)
        # the recommendations that can still be the window's highest, highest first: a
        # newer one at least as high makes the older ones irrelevant (a sliding maximum)
        while self._recommended and self._recommended[-1][1] <= recommended:
            self._recommended.pop()
        self._recommended.append((now, recommended))
        horizon = now - self._settings.scale_down_delay_s
        while self._recommended[0][0] < horizon:
            self._recommended.popleft()
        self.target = min(max(self._recommended[0][1], low), high)
        return Decision(self.target, concurrency, wanted if wanted > high else None)
