"""Instance statuses and the moves allowed between them.

The table is the documentation: the UI and the docs render it as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from pier.domain.errors import IllegalTransition


class InstanceStatus(StrEnum):
    UNDEFINED = "Undefined"
    CREATED = "Created"
    STARTED = "Started"
    PREPARING = "Preparing"
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    DELETING = "Deleting"


_S = InstanceStatus
ALLOWED: Final[Mapping[InstanceStatus, frozenset[InstanceStatus]]] = {
    _S.UNDEFINED: frozenset({_S.CREATED, _S.DELETING}),
    _S.CREATED: frozenset({_S.STARTED, _S.DELETING}),
    _S.STARTED: frozenset({_S.PREPARING, _S.DELETING}),
    _S.PREPARING: frozenset({_S.HEALTHY, _S.UNHEALTHY, _S.DELETING}),
    _S.HEALTHY: frozenset({_S.UNHEALTHY, _S.DELETING}),
    _S.UNHEALTHY: frozenset({_S.HEALTHY, _S.DELETING}),
    _S.DELETING: frozenset(),
}

_ORDER: Final = (_S.UNDEFINED, _S.CREATED, _S.STARTED, _S.PREPARING)


def advance(current: InstanceStatus, new: InstanceStatus) -> InstanceStatus:
    """Return ``new`` if the move is allowed; raise IllegalTransition otherwise."""
    if new is not current and new not in ALLOWED[current]:
        raise IllegalTransition(current, new)
    return new


def path_to(current: InstanceStatus, target: InstanceStatus) -> list[InstanceStatus]:
    """The statuses to pass through from ``current`` to ``target``, ``target`` last.

    One observation may jump (an adopted instance is seen Healthy at once); recording
    every intermediate step keeps the timeline complete.
    """
    if target is current:
        return []
    if target in ALLOWED[current]:
        return [target]
    if current in _ORDER:
        steps = list(_ORDER[_ORDER.index(current) + 1 :])
        if target in _ORDER:
            steps = steps[: steps.index(target) + 1]
        else:
            steps.append(target)
        for before, after in zip([current, *steps], steps, strict=False):
            advance(before, after)
        return steps
    raise IllegalTransition(current, target)


@dataclass(frozen=True, slots=True)
class InstanceView:
    """pier's opinion of one instance; moved_to() returns a new object. The controller
    keeps one per tracked instance and replaces it on every move."""

    instance_id: str
    status: InstanceStatus
    since: float
    restarts: int = 0
    last_error: str | None = None

    def moved_to(self, status: InstanceStatus, *, now: float) -> InstanceView:
        if status is self.status:
            return self
        advance(self.status, status)
        return replace(self, status=status, since=now)
