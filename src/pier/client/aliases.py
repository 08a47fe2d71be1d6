"""The Client's calls on aliases and their guarded rollouts."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pier.client.base import ClientBase, spec_fields, typed_answer
from pier.client.errors import WaitTimedOut
from pier.domain.aliases import AliasSpec
from pier.domain.errors import PierError
from pier.domain.rollouts import RolloutPhase
from pier.domain.views import AliasList, AliasView, RolloutView, SeriesMetric, SeriesView


class AliasCalls(ClientBase):
    """Aliases and their rollouts."""

    def create_alias(
        self, name: str, spec: AliasSpec | Mapping[str, Any] | None = None, **fields: Any
    ) -> AliasView:
        """Create an alias from spec fields: ``nodes=[{"node": "iris-v1", "share": 90},
        {"node": "iris-v2", "share": 10}]`` (shares sum to 100; one node may leave its
        share out and takes the rest), ``mirrors``, ``sticky_header``, ``header_routes``,
        ``metadata``, ``access``."""
        body = {"name": name, "spec": {**spec_fields(spec), **fields}}
        response = self._request("POST", self._project_path("aliases"), json=body)
        return typed_answer(response, AliasView)

    def list_aliases(self) -> list[AliasView]:
        """The aliases of the project."""
        return typed_answer(self._request("GET", self._project_path("aliases")), AliasList).aliases

    def get_alias(self, name: str) -> AliasView:
        """An alias: its spec and, per node, its share, the share it takes now and why."""
        return typed_answer(self._request("GET", self._project_path("aliases", name)), AliasView)

    def alias_series(
        self, name: str, metric: SeriesMetric | str, *, since: float = 300.0, step: int = 5
    ) -> SeriesView:
        """pier's own samples of an alias's requests: a line for the alias (``node``
        None) and one per node behind it."""
        params = {"metric": str(metric), "since": since, "step": step}
        path = self._project_path("aliases", name, "series")
        return typed_answer(self._request("GET", path, params=params), SeriesView)

    def set_alias(
        self, name: str, spec: Mapping[str, Any] | None = None, **fields: Any
    ) -> AliasView:
        """Change some spec fields, as a JSON Merge Patch: ``set_alias("prod",
        nodes=[{"node": "iris-v2"}])`` moves all traffic to iris-v2 and keeps the rest
        (``nodes``, ``mirrors`` and ``header_routes`` are replaced whole; None removes a
        field). Every gateway worker switches at once."""
        body = {"spec": {**(spec or {}), **fields}}
        response = self._request("PATCH", self._project_path("aliases", name), json=body)
        return typed_answer(response, AliasView)

    def replace_alias(self, name: str, spec: AliasSpec | Mapping[str, Any]) -> AliasView:
        """Replace the alias's whole spec (what it leaves out goes back to its default)."""
        body = {"spec": spec_fields(spec)}
        response = self._request("PUT", self._project_path("aliases", name), json=body)
        return typed_answer(response, AliasView)

    def delete_alias(self, name: str) -> None:
        """Delete an alias; its nodes stay."""
        self._request("DELETE", self._project_path("aliases", name))

    def wait_alias_routed(
        self, name: str, *, timeout_s: float = 30.0, poll_s: float = 0.1
    ) -> AliasView:
        """Return once every gateway worker serves the alias as it is stored now."""
        deadline = time.monotonic() + timeout_s
        while not (alias := self.get_alias(name)).routed:
            if time.monotonic() >= deadline:
                raise PierError(f"alias {name!r} was not published within {timeout_s:g} s")
            time.sleep(poll_s)
        return alias

    # -- rollouts -------------------------------------------------------------------

    def start_rollout(
        self,
        alias: str,
        *,
        to_node: str,
        steps: Sequence[int],
        bake_s: float,
        max_error_rate: float,
        max_p95_ms: float | None = None,
        **fields: Any,
    ) -> RolloutView:
        """Move an alias's traffic to ``to_node`` by ``steps`` (percents), each held
        ``bake_s``; it rolls back by itself when the new node's error rate (a fraction:
        0.01 is 1%) or p95 latency is over its limit. ``pier.RolloutRunning`` if one runs."""
        body = {"to_node": to_node, "steps": list(steps), "bake_s": bake_s,
                "max_error_rate": max_error_rate, "max_p95_ms": max_p95_ms, **fields}  # fmt: skip
        path = self._project_path("aliases", alias, "rollout")
        return typed_answer(self._request("POST", path, json=body), RolloutView)

    def get_rollout(self, alias: str) -> RolloutView:
        """An alias's latest rollout: step, figures, decision and why."""
        path = self._project_path("aliases", alias, "rollout")
        return typed_answer(self._request("GET", path), RolloutView)

    def abort_rollout(self, alias: str) -> RolloutView:
        """Roll an alias's running rollout back now."""
        path = self._project_path("aliases", alias, "rollout", "abort")
        return typed_answer(self._request("POST", path), RolloutView)

    def wait_rollout(
        self,
        alias: str,
        *,
        timeout_s: float = 3600.0,
        poll_s: float = 0.5,
        on_progress: Callable[[RolloutView], None] | None = None,
    ) -> RolloutView:
        """Poll until the alias's rollout is completed or rolled back; its last state."""
        deadline = time.monotonic() + timeout_s
        while True:
            rollout = self.get_rollout(alias)
            if on_progress is not None:
                on_progress(rollout)
            if rollout.phase is not RolloutPhase.RUNNING:
                return rollout
            if time.monotonic() >= deadline:
                raise WaitTimedOut(f"alias/{alias}", "finish its rollout", timeout_s, None)
            time.sleep(poll_s)
