"""Passive health: an instance that answers the gateway's traffic needs no probe meanwhile.

The gateway counts, per routed instance, the requests it answered below 500 and the ones
that failed (a 5xx, the gateway's 502/504 for it, a refused connection; see
``gateway/metrics.py``). The controller reads those counts with the nodes' figures once
a tick and hands each Healthy instance's to its probe's ``TrafficWindow``.

The rule, at each of the probe's rounds (every ``interval_s``):

* the round is skipped, and counts as a passing check, when the gateway read since the
  previous round shows answers and no failure of the instance, every read in between
  having its figures (an instance that is not Healthy, a gateway that did not answer,
  or counts that went back, as after a gateway restart, give no figures), and the
  probe's own last check did not fail;
* otherwise the probe runs as ever: traffic stopped, errors were seen, or the health
  check itself is failing.

Counting a skipped round as a pass is honest: the instance answered real requests
(below 500) since the last round and failed none. It only ever keeps an instance
Healthy: only Healthy instances are routed, so an instance not yet Healthy (or
Unhealthy) has no traffic to speak for it and gets there by its probe alone.

A failing instance leaves balancing at least as fast as without passive health: a
round is never skipped once a failure was seen, and a paused probe is woken at once by
the first read that shows one (``woken``), instead of waiting out its interval. A health
check that fails while the traffic is still answered below 500 is seen at the next
round that probes (at most ``max_skips`` rounds later): from then on every round
probes until a check passes, so the traffic can neither mend the failing check's count
nor, in the reads still taken while the instance was Healthy, bring an Unhealthy one
back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

INSTANCE_REQUESTS = "pier_gateway_instance_requests"


@dataclass(frozen=True, slots=True)
class InstanceTraffic:
    """What the gateway counted of one instance's requests (every worker's added)."""

    answered: int = 0
    """Answered by the instance below 500."""
    failed: int = 0
    """A 5xx, the gateway's 502/504 for it, or a refused connection."""

    def plus(self, other: InstanceTraffic) -> InstanceTraffic:
        return InstanceTraffic(self.answered + other.answered, self.failed + other.failed)


NO_TRAFFIC = InstanceTraffic()
"""The counts of a routed instance the gateway shows no series of: none yet."""


def instance_traffic(families: Iterable[Any]) -> dict[str, InstanceTraffic]:
    """``pier_gateway_instance_requests_total`` of parsed Prometheus families, by
    instance id."""
    counts: dict[str, dict[str, int]] = {}
    for family in families:
        if family.name != INSTANCE_REQUESTS:
            continue
        for sample in family.samples:
            instance = sample.labels.get("instance")
            if instance:
                counts.setdefault(instance, {})[sample.labels.get("outcome", "")] = int(
                    sample.value
                )
    return {
        instance: InstanceTraffic(by.get("answered", 0), by.get("failed", 0))
        for instance, by in counts.items()
    }


class TrafficWindow:
    """The gateway's counts of one instance since its probe's last round (see the module
    docstring)."""

    __slots__ = ("_answered", "_is_complete", "_is_failing", "_last", "_max_skips",
                 "_paused", "_skipped", "woken")  # fmt: skip

    def __init__(self, *, max_skips: int = 4) -> None:
        """``max_skips``: rounds skipped in a row at most; the next one probes, so a
        health check that turns failing while the traffic still answers is seen."""
        self._max_skips = max_skips
        self._skipped = 0
        self._last: InstanceTraffic | None = None
        """The counts of the last read; None: that read had none for the instance."""
        self._answered = 0
        self._is_failing = False
        self._is_complete = True
        self._paused = False
        self.woken = asyncio.Event()
        """Set when a failure is seen while the probe is paused: it runs at once."""

    def counted(self, traffic: InstanceTraffic | None) -> None:
        """A read of the gateway: the instance's counts, or None (no read, or the
        instance is not Healthy)."""
        last, self._last = self._last, traffic
        if traffic is None or last is None:
            self._is_complete = False
            return
        if traffic.answered < last.answered or traffic.failed < last.failed:
            self._is_complete = False  # counted afresh (a gateway restarted): no window
            return
        self._answered += traffic.answered - last.answered
        if traffic.failed > last.failed:
            self._is_failing = True
            if self._paused:
                self.woken.set()

    def take(self, *, may_skip: bool = True) -> bool:
        """A probe round: whether traffic answered for the instance since the previous
        round (answers, no failure, figures in every read); starts the next window.
        ``may_skip`` False (the probe's last check failed): the round probes whatever
        the traffic says."""
        answered = self._answered > 0 and not self._is_failing and self._is_complete
        answered = answered and may_skip and self._skipped < self._max_skips
        self._skipped = self._skipped + 1 if answered else 0
        self._answered, self._is_failing = 0, False
        self._is_complete = self._last is not None
        self._paused = answered
        self.woken.clear()
        return answered
