"""Which instance takes a request, and which node of an alias.

Instances: least outstanding requests by the power of two choices. The gateway counts
the requests it has in flight to each instance endpoint (``Upstream.in_flight``). Picking
the global minimum would send every gateway worker's next request to the same instance
(each worker only sees its own counts, and they all agree which one is idle); picking at
random ignores that inference requests vary a lot in cost. Sampling two instances and
taking the less loaded one gets almost all of the benefit of the minimum (Mitzenmacher,
"The Power of Two Choices in Randomized Load Balancing") at O(1) cost and without the herd.
Ties break at random, so a lightly loaded node still spreads its requests.

An instance that just refused a connection is marked down for a moment: it only wins
a choice against another instance that is also down. This keeps a crashed instance
from costing a failed connect on every other request until the control plane removes it
from the routes, without the gateway keeping health state of its own.

Aliases: a weighted random choice over the alias's nodes that have a weight above zero
and at least one Healthy instance. It is random (not round-robin by weight) so gateway
workers need no shared counter, and it is recomputed whenever the route table changes,
so a node whose last instance went away stops receiving its share at once.

Sticky sessions: a session's header value is hashed (BLAKE2b, the same in every worker
and after a restart, unlike ``hash()``); the upper half of the hash picks the node by
weight, so a session stays on its node while the shares stay, and the lower half is a
point on the node's hash ring, where each instance has ``RING_REPLICAS`` points (hashed
from its id). The session goes to the instance owning the first point at or after its
own. Adding an instance takes over about 1/n of the sessions, each from one neighbour;
removing one moves only its own sessions, each to the next point's instance.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from hashlib import blake2b
from itertools import accumulate
from random import random
from typing import Generic, Protocol, TypeVar

DOWN_FOR_S = 1.0
"""How long an instance that refused a connection loses every tie."""
RING_REPLICAS = 100
"""Points per instance on a hash ring: enough for an even share at a few instances."""
TABLE_MAX = 1000
"""A weighted choice of weights summing to at most this is a table lookup."""


class Balanced(Protocol):
    """What a choice reads of an instance; the instance (pool.Upstream) owns both."""

    @property
    def in_flight(self) -> int: ...

    @property
    def down_until(self) -> float:
        """Until when it loses every tie (it refused a connection: see DOWN_FOR_S)."""
        ...


class Keyed(Protocol):
    @property
    def instance_id(self) -> str: ...


B = TypeVar("B", bound=Balanced)
K = TypeVar("K", bound=Keyed)
T = TypeVar("T")


def pick_instance(instances: Sequence[B], now: float) -> B:
    """Least outstanding requests of two sampled instances (``instances`` is not empty)."""
    n = len(instances)
    if n == 1:
        return instances[0]
    if n == 2:
        a, b = instances
    else:
        i = int(random() * n)
        j = int(random() * (n - 1))
        if j >= i:
            j += 1
        a, b = instances[i], instances[j]
    load_a = a.in_flight
    load_b = b.in_flight
    if a.down_until > now:
        load_a += 1_000_000
    if b.down_until > now:
        load_b += 1_000_000
    if load_a < load_b:
        return a
    if load_b < load_a:
        return b
    return a if random() < 0.5 else b


class WeightedChoice(Generic[T]):
    """Pick one of ``items`` with probability proportional to its weight (all > 0).

    Integer weights summing to at most ``TABLE_MAX`` (an alias's shares: 100) are laid
    out in a table with each item ``weight`` times, so a pick is one index; larger sums
    are searched in the cumulative weights. Both give every item exactly its share. (The
    table ends with its last item once more: ``fraction * total`` rounds up to ``total``
    for a fraction just below 1.)"""

    __slots__ = ("_cumulative", "_items", "_table", "_total")

    def __init__(self, items: Sequence[T], weights: Sequence[int]) -> None:
        if not items or len(items) != len(weights) or min(weights) <= 0:
            raise ValueError("WeightedChoice needs items with positive weights")
        self._items = tuple(items)
        self._cumulative = list(accumulate(weights))
        self._total = self._cumulative[-1]
        self._table: tuple[T, ...] | None = None
        if self._total <= TABLE_MAX:
            spread = [
                item for item, weight in zip(items, weights, strict=True) for _ in range(weight)
            ]
            self._table = (*spread, spread[-1])

    def pick(self) -> T:
        """One item, chosen by weight."""
        table = self._table
        if table is not None:
            return table[int(random() * self._total)]
        return self.pick_at(random())

    def pick_at(self, fraction: float) -> T:
        """The item whose share of [0, 1) holds ``fraction``: the same one every time."""
        table = self._table
        if table is not None:
            return table[int(fraction * self._total)]
        index = bisect_right(self._cumulative, fraction * self._total)
        return self._items[min(index, len(self._items) - 1)]

    @property
    def items(self) -> tuple[T, ...]:
        return self._items


def session_hash(value: bytes) -> int:
    """A session header value as a 128-bit number (stable across processes)."""
    return int.from_bytes(blake2b(value, digest_size=16).digest(), "big")


class HashRing(Generic[K]):
    """Consistent hashing of sessions onto instances (see the module docstring)."""

    __slots__ = ("_owners", "_points")

    def __init__(self, instances: Sequence[K]) -> None:
        points = sorted(
            (_point(b"%s#%d" % (instance.instance_id.encode(), replica)), index)
            for index, instance in enumerate(instances)
            for replica in range(RING_REPLICAS)
        )
        self._points = [point for point, _ in points]
        self._owners = [instances[index] for _, index in points]

    def pick(self, session: int) -> K | None:
        """The instance owning ``session`` (its lower 64 bits); None on an empty ring."""
        points = self._points
        if not points:
            return None
        index = bisect_left(points, session & _LOW_64)
        return self._owners[index if index < len(points) else 0]


_LOW_64 = 2**64 - 1


def _point(key: bytes) -> int:
    return int.from_bytes(blake2b(key, digest_size=8).digest(), "big")


class SessionPins:
    """The instance each sticky session went to last (this worker's, at most
    ``max_sessions``, the longest unseen forgotten first): how a moved session is told."""

    __slots__ = ("_last", "_max")

    def __init__(self, max_sessions: int) -> None:
        self._last: dict[int, str] = {}
        self._max = max_sessions

    def pin(self, session: int, instance_id: str) -> bool:
        """Record that ``session`` goes to ``instance_id``; True if it went to another
        instance before (it was re-pinned)."""
        last = self._last.pop(session, None)
        if last is None and len(self._last) >= self._max:
            del self._last[next(iter(self._last))]
        self._last[session] = instance_id
        return last is not None and last != instance_id
