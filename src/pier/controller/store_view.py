"""What the controller reads of the store on a tick, read again only where it changed.

Every write the tick depends on (a node, an alias or rollout, a token or member, a
project's limits) counts one change in the store (Repository.node_changes). A tick asks
for what changed after the last number it saw: when nothing did, that is one read of the
counter and nothing else; when something did, only the changed node rows are read, with
the few small tables the routes and quotas come from. A removed node, which cannot be
read as changed, makes the next read a whole one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pier.controller.store_thread import StoreThread
from pier.domain.names import NodeKey
from pier.domain.quotas import ProjectLimits
from pier.domain.records import AliasRecord, CallGrants, NodeRecord, RolloutRecord
from pier.store.repository import Repository, utcnow


@dataclass(frozen=True, slots=True)
class StoreState:
    """The store as of change number ``seq``."""

    seq: int | None = None
    nodes: list[NodeRecord] = field(default_factory=list)
    """By project and name, as Repository.list_nodes has them."""
    limits: dict[str, ProjectLimits] = field(default_factory=dict)
    grants: CallGrants = field(default_factory=lambda: CallGrants(frozenset(), {}))
    """Tokens expired since are still in; the gateway checks each token's expiry itself."""
    aliases: list[AliasRecord] = field(default_factory=list)
    rollouts: list[RolloutRecord] = field(default_factory=list)
    """The running ones."""


class StoreView:
    def __init__(self, repo: Repository, db: StoreThread) -> None:
        self._repo = repo
        self._db = db
        self._by_key: dict[NodeKey, NodeRecord] = {}
        self.state = StoreState()
        """As of the latest read."""

    async def read(self) -> StoreState:
        """The store as it is now, reading only what changed since the last read."""
        self.state = await self._db.run(self._read, self.state)
        return self.state

    def _read(self, before: StoreState) -> StoreState:
        """In the store thread: one read of the counter; more only if it moved."""
        changes = self._repo.node_changes(before.seq)
        if changes.seq == before.seq:
            return before
        if changes.whole:
            self._by_key = {n.key: n for n in changes.nodes}
        else:
            self._by_key.update((n.key, n) for n in changes.nodes)
        nodes = sorted(self._by_key.values(), key=lambda n: (n.project, n.name))
        return StoreState(
            seq=changes.seq,
            nodes=nodes,
            limits=self._repo.all_project_limits(),
            grants=self._repo.call_grants(utcnow()),
            aliases=self._repo.list_aliases(),
            rollouts=self._repo.running_rollouts(),
        )
