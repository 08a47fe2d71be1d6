"""The controller's part of guarded rollouts: each tick, every running rollout is decided
(domain.rollouts) on the gateway's counters of the new node's requests through the alias,
and a decision that changes anything is stored with the alias's new shares and its event
(Repository.apply_rollout), before the routes are published in the same tick.

No figures, no decision: while the gateway does not answer, a rollout neither advances
nor rolls back (its bake deadline stays; it is judged when figures come back). The state
is all in the store, so a restarted controller goes on with the step it was at.

A decision is stored only if the rollout is still as it was read: an abort (or a new
rollout) stored meanwhile by the API is never overwritten by a tick's older view.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

import structlog

from pier.controller.store_thread import StoreThread
from pier.domain.errors import PierError, StoreUnavailable
from pier.domain.records import RolloutRecord
from pier.domain.rollouts import RolloutAction, TrafficCounts, decide
from pier.store.repository import Repository

log = structlog.get_logger("pier.controller")

AliasNodeCounts = Mapping[tuple[str, str, str], TrafficCounts]
"""The gateway's cumulative counters by (project, alias, node)."""
CountsReader = Callable[[], Awaitable[AliasNodeCounts | None]]
"""Reads them from every gateway worker; None when the gateway did not answer."""


class RolloutDriver:
    def __init__(
        self,
        repo: Repository,
        db: StoreThread,
        read_counts: CountsReader | None,
        clock: Callable[[], float],
    ) -> None:
        """``read_counts``: None where there is no gateway (nothing is ever decided).
        ``db``: the controller's store thread, where the store calls run."""
        self._repo = repo
        self._db = db
        self._read_counts = read_counts
        self._clock = clock

    async def drive(self, running: Sequence[RolloutRecord]) -> bool:
        """Decide every ``running`` rollout once (as the tick read them); True if a
        decision was stored."""
        if not running or self._read_counts is None:
            return False
        counts = await self._read_counts()
        if counts is None:
            return False
        now = self._clock()
        stored_any = False
        for record in running:
            state = record.state
            key = (record.project, record.alias, state.plan.to_node)
            decided = decide(state, now=now, counts=counts.get(key, TrafficCounts()))
            if decided == state:
                continue
            try:
                stored = await self._db.run(
                    self._repo.replace_rollout, record.project, record.alias, state, decided
                )
            except StoreUnavailable:
                raise  # the whole tick failed
            except PierError as exc:  # e.g. the alias was deleted meanwhile
                log.info("rollout decision not stored", alias=record.alias, reason=exc.message)
                continue
            stored_any = stored_any or stored is not None
            if stored is not None and decided.action is not RolloutAction.HOLD:
                log.info("rollout decided", project=record.project, alias=record.alias,
                         action=str(decided.action), why=decided.why)  # fmt: skip
        return stored_any
