"""Rollout use cases: start, abort and read an alias's guarded rollout.

The decisions are domain.rollouts'; the controller takes them each tick from the
gateway's figures. Starting gives the alias its first step's shares at once (the bake
starts when the controller first reads the new node's counters); aborting puts back the
shares of before the rollout. Each decision is an event on the new node's timeline
(Repository.apply_rollout).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from pier.domain.errors import InvalidSpec, RolloutNotFound, RolloutRunning, did_you_mean
from pier.domain.records import RolloutRecord
from pier.domain.rollouts import (
    RolloutPhase,
    RolloutPlan,
    abort_rollout,
    parse_rollout_plan,
    shares_of,
    start_rollout,
)
from pier.domain.views import RolloutView
from pier.services.views import rollout_view
from pier.store.repository import Repository


class RolloutService:
    def __init__(self, repo: Repository, *, clock: Callable[[], float] = time.time) -> None:
        self._repo = repo
        self._clock = clock

    def start(
        self, project: str, alias: str, plan: RolloutPlan | Mapping[str, Any], *, actor: str
    ) -> RolloutView:
        """Start moving the alias's traffic to ``plan.to_node`` step by step."""
        parsed = plan if isinstance(plan, RolloutPlan) else parse_rollout_plan(plan)
        with self._repo.unit_of_work():
            record = self._repo.get_alias(project, alias)
            latest = self._repo.get_rollout(project, alias)
            if latest is not None and latest.state.phase is RolloutPhase.RUNNING:
                raise RolloutRunning(project, alias, latest.state.plan.to_node)
            self._check_node(project, parsed.to_node)
            state = start_rollout(parsed, shares_of(record.spec), now=self._clock())
            saved = self._repo.apply_rollout(project, alias, state, actor=actor)
        return rollout_view(saved)

    def abort(self, project: str, alias: str, *, actor: str) -> RolloutView:
        """Roll the running rollout back now; a finished one is left as it is."""
        with self._repo.unit_of_work():
            latest = self._latest(project, alias)
            state = abort_rollout(latest.state, now=self._clock(), actor=actor)
            if state == latest.state:
                return rollout_view(latest)
            saved = self._repo.apply_rollout(project, alias, state, actor=actor)
        return rollout_view(saved)

    def get(self, project: str, alias: str) -> RolloutView:
        """The alias's latest rollout."""
        return rollout_view(self._latest(project, alias))

    def _latest(self, project: str, alias: str) -> RolloutRecord:
        self._repo.get_alias(project, alias)
        latest = self._repo.get_rollout(project, alias)
        if latest is None:
            raise RolloutNotFound(project, alias)
        return latest

    def _check_node(self, project: str, node: str) -> None:
        nodes = {n.name: n for n in self._repo.list_nodes(project)}
        found = nodes.get(node)
        if found is None:
            raise InvalidSpec(
                "to_node", f"no node {node!r} in project {project!r}{did_you_mean(node, nodes)}"
            )
        if found.deleting:
            raise InvalidSpec("to_node", f"node {node!r} is being deleted")
