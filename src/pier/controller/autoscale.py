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

A node with no load (its integral has not moved over the window) and nothing pending
needs no decision at all: ``unchanged`` says so in a few comparisons, so a tick over a
thousand idle nodes costs little. It holds until the integral moves, the spec or the
quota's ceiling changes, or the oldest recommendation still held (a burst's, higher
than the floor) expires: its due time, when the target may fall. The readings skipped
meanwhile are accounted for when the scaler next observes or decides, as if it had.
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
        self._quiet: tuple[NodeSpec, int | None] | None = None
        """(spec, ceiling) of the last decision, taken with no load; None: it had load."""
        self._due = math.inf
        """When the oldest recommendation held expires (the target may fall then)."""
        self._skipped_at: float | None = None
        """The last reading ``unchanged`` stood for, not yet accounted for."""

    def unchanged(
        self, now: float, in_flight_seconds: float, spec: NodeSpec, ceiling: int | None
    ) -> bool:
        """True if observe and decide now would change nothing (the caller then skips
        both): the last decision found no load, the integral has not moved since, the
        spec (the same object) and ``ceiling`` are the last decision's, and no held
        recommendation expires yet."""
        quiet = self._quiet
        if quiet is None or quiet[0] is not spec or quiet[1] != ceiling or now >= self._due:
            return False
        if in_flight_seconds != self._samples[-1][1]:
            return False
        self._skipped_at = now
        return True

    def _catch_up(self, now: float) -> None:
        """Account for the readings ``unchanged`` stood for: the integral held the last
        sample's value from the window's start (or the first sample) to the last of
        them, and each would have renewed the newest recommendation (the floor)."""
        skipped_at = self._skipped_at
        if skipped_at is None:
            return
        self._skipped_at = None
        first_at, value = self._samples[0]
        self._samples.clear()
        self._samples.append((max(first_at, now - self._settings.window_s), value))
        self._samples.append((skipped_at, value))
        self._recommended[-1] = (skipped_at, self._recommended[-1][1])

    def observe(self, now: float, in_flight_seconds: float) -> None:
        """One reading of the node's in-flight integral."""
        self._catch_up(now)
        if self._samples and in_flight_seconds < self._samples[-1][1]:
            self._samples.clear()  # the gateway restarted: its counter began again
        self._samples.append((now, in_flight_seconds))
        horizon = now - self._settings.window_s
        samples = self._samples
        while len(samples) > 2 and samples[1][0] <= horizon:
            samples.popleft()
        if len(samples) > 1 and samples[0][0] < horizon and samples[0][1] == samples[1][1]:
            samples[0] = (horizon, samples[0][1])  # the integral held still: so at the horizon

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
        self._catch_up(now)
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
        self._quiet = (spec, ceiling) if concurrency == 0.0 else None
        held = self._recommended
        self._due = held[0][0] + self._settings.scale_down_delay_s if len(held) > 1 else math.inf
        return Decision(self.target, concurrency, wanted if wanted > high else None)
