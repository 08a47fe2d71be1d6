"""The reconcile loop.

Level-triggered: each tick compares the desired node specs (store) with the instances
the runtimes report and moves every node one step closer. Nodes are reconciled
concurrently, each under its own lock; one failing node never stops the loop.

Restart safety: runtimes label every instance with its project, node and id, and
``adopt()`` matches what they report to the store's rows before the first tick, so a
restarted control plane neither duplicates nor orphans instances.

A node runs only on the runtime it is bound to (``NodeRecord.runtime``). While that
runtime is missing (no Docker engine answers), the node gets no instances anywhere: it
says why in an event and its message, and the registry tries the runtime again with a
backoff; when it loads, what already runs there is adopted before the node is reconciled.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import structlog

from pier.controller.adoption import Adoption
from pier.controller.alias_figures import AliasFiguresBoard, traffic_counts
from pier.controller.autoscale import AutoscaleSettings, Decision, NodeScaler
from pier.controller.backoff import CrashBackoff
from pier.controller.gateway_view import AliasFiguresRead, GatewayView
from pier.controller.incidents import NodeEvents, describe_failure, redact
from pier.controller.instance_specs import DEFAULT_LAUNCHER, instance_spec
from pier.controller.node_state import NodeState
from pier.controller.observe import observe_status
from pier.controller.passive import NO_TRAFFIC, InstanceTraffic
from pier.controller.plan import Plan, plan_node
from pier.controller.probes import Probe
from pier.controller.pulls import ImagePulls
from pier.controller.quota_room import held_message, quota_ceiling
from pier.controller.rollouts import AliasNodeCounts, CountsReader, RolloutDriver
from pier.controller.route_table import build_route_table
from pier.controller.routes import RouteBoard
from pier.controller.store_thread import StoreThread
from pier.controller.store_view import StoreState, StoreView
from pier.controller.tick_failures import TickFailures
from pier.controller.tick_times import TickTimes
from pier.controller.tracked import TrackedInstance
from pier.domain.errors import NotFound, PierError, StoreUnavailable
from pier.domain.event_kinds import FAILURES, EventKind
from pier.domain.instance_status import InstanceStatus, InstanceView, path_to
from pier.domain.names import InstanceId, NodeKey
from pier.domain.records import InstanceRecord, NodeRecord, endpoint_for_port
from pier.domain.retry import PermanentError, TemporaryError
from pier.runtimes.base import InstanceSpec, Observed, Runtime
from pier.runtimes.registry import RuntimeRegistry
from pier.settings import ControllerSettings
from pier.store.repository import Repository

log = structlog.get_logger("pier.controller")
S = InstanceStatus
K = EventKind
LOG_TAIL_LINES = 20
MAX_DRAIN_S = 120.0
"""The longest an instance leaving the routes waits for its requests in flight."""
DRAIN_POLL_S = 0.1
STARTING = frozenset({S.UNDEFINED, S.CREATED, S.STARTED, S.PREPARING})
"""An instance made and not yet Healthy (nor Unhealthy, nor leaving)."""
COMMAND_NOT_RUNNABLE = frozenset({126, 127})
"""Exit codes of a shell or init that could not run the command (not executable, not found)."""


class Controller:
    def __init__(
        self,
        repo: Repository,
        runtimes: RuntimeRegistry | Mapping[str, Runtime],
        *,
        settings: ControllerSettings,
        models_dir: Path,
        board: RouteBoard,
        max_body_bytes: int | None = None,
        gateway_url: str | None = None,
        gateway_token: str | None = None,
        gateways: GatewayView | None = None,
        clock: Callable[[], float] = time.time,
        alias_counts: CountsReader | None = None,
        alias_figures: AliasFiguresBoard | None = None,
        fence: Callable[[], None] | None = None,
    ) -> None:
        """``runtimes``: a registry (a missing runtime is retried; see runtimes.registry)
        or a mapping of runtimes already built. ``gateway_url``: where the gateway's load
        figures are read, for autoscaling; without it every node runs ``min_instances``.
        ``gateway_token``: the admin token, without which the gateway shows no figures of
        private nodes. ``gateways``: where every gateway's figures are read instead (the
        registry's view, see gateway_registry.py). ``alias_counts``: the gateway's counters
        of alias traffic by node, on which guarded rollouts are decided; by default those
        of the gateways (read once a tick with their load; without any none is decided).
        ``alias_figures``: where each tick's read of the mirrors' figures is published,
        for the API. ``fence``: called before each store call, raises once this process
        no longer leads (see store_thread.py)."""
        self._repo = repo
        self._runtimes = (
            runtimes if isinstance(runtimes, RuntimeRegistry) else RuntimeRegistry.of(runtimes)
        )
        self._settings = settings
        self._models_dir = models_dir
        self._board = board
        self._clock = clock
        self._nodes: dict[NodeKey, NodeState] = {}
        """Per node, all the controller keeps of it (see node_state.py)."""
        self._reconciled: set[NodeKey] = set()
        """Nodes with a reconcile task whose outcome is not taken yet: a tick looks at
        these, not at every node (most of a thousand idle ones have none)."""
        self._http = httpx.AsyncClient(trust_env=False)
        self._task: asyncio.Task[None] | None = None
        self._max_body_bytes = max_body_bytes
        self._gateway = gateways or (
            GatewayView.over_http(gateway_url, self._http, token=gateway_token)
            if gateway_url
            else None
        )
        self._drains: dict[InstanceId, asyncio.Task[None]] = {}
        self._max_starting = settings.max_starting or 8 * (os.cpu_count() or 1)
        self._creating = 0
        """Instance starts under way whose instance is not tracked yet."""
        self._autoscale = AutoscaleSettings(
            window_s=settings.autoscale_window_s,
            scale_down_delay_s=settings.scale_down_delay_s,
        )
        self._db = StoreThread(fence)
        """Every store call of the controller runs there, off the event loop, in order."""
        self._store = StoreView(repo, self._db)
        self._events = NodeEvents(repo, self._db)
        self._pulls = ImagePulls(repo, self._db, self._events, clock)
        self._tick_failures = TickFailures()
        self._tick_times = TickTimes()
        self._routes_from: Any = None
        """What the last published route table was built from: the same again makes the
        same table, which is not built again."""
        self._watch: asyncio.Task[None] | None = None
        self._alias_read: AliasFiguresRead | None = None
        """The alias figures of this tick's read of the gateway; None: it did not answer."""
        self._alias_board = alias_figures
        if alias_counts is None and self._gateway is not None:
            alias_counts = self._tick_alias_counts
        self._rollouts = RolloutDriver(repo, self._db, alias_counts, clock)

    @property
    def tick_failures(self) -> TickFailures:
        return self._tick_failures

    @property
    def tick_times(self) -> TickTimes:
        """How long the recent ticks took."""
        return self._tick_times

    @property
    def _instances(self) -> dict[InstanceId, TrackedInstance]:
        """Every tracked instance, of every node (a copy: change them through the node's
        state)."""
        return {i: t for state in self._nodes.values() for i, t in state.instances.items()}

    def _state(self, key: NodeKey) -> NodeState:
        """The node's state, made when the controller first meets the node."""
        state = self._nodes.get(key)
        if state is None:
            backoff = CrashBackoff(self._settings.backoff_base_s, self._settings.backoff_max_s)
            state = self._nodes[key] = NodeState(backoff)
        return state

    def _untrack(self, tracked: TrackedInstance) -> None:
        state = self._nodes.get(tracked.key)
        if state is not None:
            state.instances.pop(tracked.instance_id, None)

    # life cycle

    async def start(self) -> Adoption:
        """Adopt running instances, then start ticking; returns what was adopted."""
        adopted = await self.adopt()
        self._task = asyncio.create_task(self._run(), name="controller loop")
        self._watch = asyncio.create_task(self._watch_runtimes(), name="runtime retries")
        return adopted

    async def stop(self, *, stop_instances: bool) -> bool:
        """Stop the loop; with ``stop_instances`` also stop every instance (Ctrl-C).

        Stopping does not depend on the store: instances are stopped first, and their rows
        removed afterwards if the store takes writes (if not, the next start finds them
        gone). Returns False if an instance could not be stopped. Stopping a stopped
        controller does nothing."""
        if self._http.is_closed:
            return True
        self._pulls.cancel()
        reconciling = [s.reconciling for s in self._nodes.values() if s.reconciling is not None]
        for task in (self._task, self._watch, *reconciling):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, StoreUnavailable):
                    await task
        for drain in self._drains.values():
            drain.cancel()
        stopped = True
        if stop_instances:
            stopped = await self._stop_all()
        for tracked in self._instances.values():
            await tracked.stop_probe()
        await self._http.aclose()
        self._db.close()
        return stopped

    async def _stop_all(self) -> bool:
        tracked = list(self._instances.values())
        results = await asyncio.gather(
            *(self._stop_instance(t) for t in tracked), return_exceptions=True
        )
        for t, result in zip(tracked, results, strict=True):
            if isinstance(result, BaseException):
                log.error(
                    "stopping an instance failed",
                    instance=t.instance_id,
                    error_type=type(result).__name__,
                    exc_info=result,
                )
        gone = [t for t, result in zip(tracked, results, strict=True) if result is None]
        try:
            for t in gone:
                await self._db.run(self._repo.remove_instance, t.instance_id)
        except StoreUnavailable as exc:
            log.warning("instances stopped but not removed from the store", reason=exc.reason)
        return len(gone) == len(tracked)

    async def _stop_instance(self, tracked: TrackedInstance) -> None:
        await tracked.stop_probe()
        runtime = self._runtimes[tracked.runtime]
        await runtime.delete(tracked.instance_id, grace_s=self._settings.stop_grace_s)
        self._untrack(tracked)

    async def _run(self) -> None:
        while True:
            started = self._clock()
            pause_s = 0.0
            try:
                complete = await self.tick()
            except Exception as exc:
                self._tick_failures.failed(exc)
                if isinstance(exc, TemporaryError):  # e.g. a runtime's engine lost mid-list
                    pause_s = min(exc.delay_s, self._settings.backoff_max_s)
            else:
                if complete:  # a tick that left a node's reconcile running proves nothing
                    self._tick_failures.succeeded()
            elapsed_s = self._clock() - started
            self._tick_times.add(elapsed_s)
            await asyncio.sleep(max(0.05, self._settings.tick_s - elapsed_s, pause_s))

    # adoption

    async def adopt(self) -> Adoption:
        """Match running instances to the store after a restart: keep, never duplicate.

        Rows of instances on a missing runtime are dropped too: nothing can reach them
        now, and whatever still runs there is adopted when the runtime is back."""
        counts = [await self._adopt(n, r, await r.list()) for n, r in self._runtimes.items()]
        out_of_reach = 0
        for row in await self._db.run(self._repo.list_instances):
            if self._runtimes.why_missing(row.runtime) is not None:
                await self._forget_row(
                    row, f"is out of reach: runtime {row.runtime} is unavailable"
                )
                out_of_reach += 1
        return Adoption(
            sum(c.instances for c in counts), sum(c.nodes for c in counts),
            removed=sum(c.removed for c in counts),
            lost=sum(c.lost for c in counts) + out_of_reach,
        )  # fmt: skip

    async def _adopt(self, name: str, runtime: Runtime, seen_list: list[Observed]) -> Adoption:
        """Track what ``runtime`` runs, remove its orphans, forget its rows that it no longer
        runs. The tracking happens after the last await, so the caller can make the runtime
        visible to the loop before the loop sees its instances (see _watch_runtimes)."""
        nodes = {n.key: n for n in await self._db.run(self._repo.list_nodes)}
        removed = 0
        for seen in seen_list:
            if seen.node not in nodes:
                log.info("orphan instance removed", instance=seen.instance_id)
                await runtime.delete(seen.instance_id, grace_s=self._settings.stop_grace_s)
                removed += 1
        rows = {r.id: r for r in await self._db.run(self._repo.list_instances) if r.runtime == name}
        now = self._clock()
        found: list[tuple[TrackedInstance, NodeRecord]] = []
        for seen in seen_list:
            node = nodes.get(seen.node)
            if node is None:
                continue
            row = rows.pop(seen.instance_id, None)
            tracked = TrackedInstance(
                instance_id=seen.instance_id, key=seen.node, runtime=name,
                generation=seen.generation,
                created_at=row.created_at.timestamp() if row else now,
                view=InstanceView(
                    seen.instance_id, row.status if row else S.CREATED,
                    since=row.since.timestamp() if row else now,
                    restarts=row.restarts if row else 0,
                ),
            )  # fmt: skip
            if tracked.observe(seen):
                await self._db.run(self._repo.upsert_instance, tracked.record())
            found.append((tracked, node))
            await self._event(
                node,
                K.INSTANCE_ADOPTED,
                f"instance {seen.instance_id} adopted after a restart",
                instance=seen.instance_id,
            )
        for row in rows.values():
            await self._forget_row(row, "was gone after a restart")
        for tracked, node in found:  # no await from here on
            self._state(tracked.key).instances[tracked.instance_id] = tracked
            self._ensure_probe(tracked, node)
            if tracked.status is S.DELETING:  # pier stopped while it was leaving
                self._start_removal(tracked, node, routed=False, reason="not needed")
        return Adoption(len(found), len({t.key for t, _ in found}), removed=removed, lost=len(rows))

    async def _forget_row(self, row: InstanceRecord, why: str) -> None:
        await self._db.run(self._repo.remove_instance, row.id)
        await self._db.run(
            self._repo.add_event,
            row.project,
            node=row.node,
            instance=row.id,
            kind=K.INSTANCE_LOST,
            message=f"instance {row.id} {why}",
        )

    async def _watch_runtimes(self) -> None:
        """Try the missing runtimes again as they fall due; when one loads, adopt what it
        already runs, then let the loop see it."""
        while (wait_s := self._runtimes.next_retry_in()) is not None:
            await asyncio.sleep(max(wait_s, 0.05))
            for name, runtime in (await self._runtimes.retry_due()).items():
                try:
                    adopted = await self._adopt(name, runtime, await runtime.list())
                except Exception:
                    log.exception("adopting instances failed", runtime=name)
                    adopted = Adoption()
                self._runtimes.add(name, runtime)
                log.info("runtime back", runtime=name, adopted=adopted.describe())

    async def _update_from(
        self, tracked: TrackedInstance, seen: Observed, node: NodeRecord
    ) -> None:
        if tracked.observe(seen) and tracked.status is not S.UNDEFINED:
            await self._db.run(self._repo.upsert_instance, tracked.record())  # else: saved next
        self._ensure_probe(tracked, node)

    def _ensure_probe(self, tracked: TrackedInstance, node: NodeRecord) -> None:
        """Probe the instance's health once it has an endpoint, unless it is leaving."""
        probed = endpoint_for_port(
            tracked.endpoint, tracked.port_endpoints, node.spec.health.port, node.spec.port
        )
        if probed and tracked.probe is None and tracked.status is not S.DELETING:
            probe = Probe(
                probed, node.spec.health, retry_max_s=self._settings.backoff_max_s,
                passive_max_skips=self._settings.passive_health_max_skips,
            )  # fmt: skip
            tracked.start_probe(probe)

    # the tick

    async def tick(self) -> bool:
        """Reconcile every node once, then publish the routes; True if every node's
        reconcile started and ended within the tick (False: one still runs from before or
        outlived this tick, so the tick says nothing of the store or runtimes yet)."""
        store = await self._store.read()
        nodes = store.nodes
        seen_by_node: dict[NodeKey, dict[InstanceId, Observed]] = defaultdict(dict)
        bound = {n.runtime for n in nodes}  # a node's instances run only where it is bound
        for name, runtime in self._runtimes.items():
            if name not in bound:
                continue  # no node there: nothing to observe (its orphans went at adoption)
            for seen in await runtime.list():
                seen_by_node[seen.node][seen.instance_id] = seen
        loads = await self._read_gateway()
        now = self._clock()
        for node in nodes:
            ceiling = quota_ceiling(node, nodes, store.limits, self._current_target)
            self._state(node.key).target = await self._scale(node, loads, now, ceiling)
        failed = self._take_failures()  # of reconciles that outlived their tick
        at = time.monotonic()
        due = [n for n in nodes if not self._still_quiet(n, seen_by_node.get(n.key, {}), at)]
        started = [self._start_reconcile(n, seen_by_node.get(n.key, {})) for n in due]
        tasks = [task for task in started if task is not None]
        if tasks:  # a slow node goes on in the background; the others are not held up
            await asyncio.wait(tasks, timeout=self._settings.tick_s)
            failed += self._take_failures()
        # judged now, with the failures just taken: a reconcile that ends during the
        # awaits below has a failure the next tick takes, so it proves nothing here
        complete = len(tasks) == len(started) and all(task.done() for task in tasks)
        if failed:
            raise failed[0]  # the store failed: the whole tick did
        if await self._rollouts.drive(store.rollouts):  # its shares go out with these routes
            store = await self._store.read()
        await self._publish_routes(store)
        return complete

    def _inputs(
        self, node: NodeRecord, seen: Mapping[InstanceId, Observed], state: NodeState
    ) -> tuple[Any, ...]:
        """Everything a reconcile of the node decides on, but the time. Of an instance,
        what can change its status: a node is only left alone with every instance Healthy
        (``_settle``), and a Healthy one's status moves only on an exit or on failed
        probes (their count; its passes no longer matter)."""
        instances = [
            (t.instance_id, t.status, t.exited, w.failures, w.last_error, w.unexpected_error)
            for t in state.instances.values()
            for w in (t.window,)
        ]
        return (
            node, state.target, seen, instances, state.backoff.until,
            state.backoff.is_crash_looping, state.blocked, state.unavailable,
            self._runtimes.why_missing(node.runtime), self._pulls.message(node.key),
        )  # fmt: skip

    def _still_quiet(
        self, node: NodeRecord, seen: Mapping[InstanceId, Observed], at: float
    ) -> bool:
        """Whether the node can be left alone this tick: its last reconcile had nothing to
        do, nothing it depends on changed since, and its resync is not due (``at``: the
        monotonic time of the tick)."""
        state = self._state(node.key)
        quiet = state.quiet
        if quiet is None or at - state.quiet_at >= self._settings.resync_s:
            return False
        if quiet[0] is not node or quiet[1] != state.target:  # the cheap ones first
            return False
        return bool(quiet == self._inputs(node, seen, state))

    def _settle(self, node: NodeRecord, seen: dict[InstanceId, Observed], plan: Plan) -> None:
        """After a reconcile: remember its inputs if it had nothing to do and the node is at
        rest (every instance Healthy, or none wanted), else reconcile it again next tick."""
        state = self._state(node.key)
        idle = not (plan.create or plan.delete or plan.failed) and not node.deleting
        at_rest = all(t.status is S.HEALTHY and not t.exited for t in state.instances.values())
        target = node.spec.min_instances if state.target is None else state.target
        if idle and at_rest and len(state.instances) == target:
            state.quiet, state.quiet_at = self._inputs(node, seen, state), time.monotonic()

    async def _read_gateway(self) -> dict[NodeKey, float] | None:
        """Read the gateway's figures once: the nodes' load (returned) and the aliases'
        (kept for the rollouts, published for the API)."""
        read = await self._gateway.load_and_aliases() if self._gateway else None
        self._alias_read = None if read is None else read.aliases
        if read is not None and self._alias_board is not None:
            self._alias_board.publish(read.aliases)
        if self._gateway is not None and self._settings.passive_health:
            self._tell_probes(None if read is None else read.instances)
        return None if read is None else read.loads

    def _tell_probes(self, traffic: Mapping[str, InstanceTraffic] | None) -> None:
        """Hand each Healthy instance's gateway counts to its probe (passive health);
        the others, and every one when the gateway did not answer, get none."""
        for state in self._nodes.values():
            for tracked in state.instances.values():
                probe = tracked.probe
                if probe is None:
                    continue
                if traffic is None or tracked.status is not S.HEALTHY or tracked.exited:
                    probe.traffic.counted(None)
                else:
                    probe.traffic.counted(traffic.get(tracked.instance_id, NO_TRAFFIC))

    async def _tick_alias_counts(self) -> AliasNodeCounts | None:
        read = self._alias_read
        return None if read is None else traffic_counts(read)

    def _take_failures(self) -> list[BaseException]:
        """What the finished reconciles raised (only StoreUnavailable gets out)."""
        found: list[BaseException] = []
        for key in list(self._reconciled):
            state = self._nodes.get(key)
            if state is None:  # the node was removed, and all of it forgotten
                self._reconciled.discard(key)
            elif state.reconciling is None or state.reconciling.done():
                self._reconciled.discard(key)
                if (exc := state.take_failure()) is not None:
                    found.append(exc)
        return found

    def _start_reconcile(
        self, node: NodeRecord, seen: dict[InstanceId, Observed]
    ) -> asyncio.Task[None] | None:
        """Reconcile the node in a task of its own, unless its previous one still runs."""
        state = self._state(node.key)
        if state.reconciling is not None and not state.reconciling.done():
            return None
        task = asyncio.create_task(
            self._reconcile_guarded(node, seen), name=f"reconcile {node.key}"
        )
        task.add_done_callback(_retrieve_store_failure)
        state.reconciling = task
        self._reconciled.add(node.key)
        return task

    async def _publish_routes(self, store: StoreState | None = None) -> int:
        """Publish the routes as they are now; returns the version the gateway must reach."""
        if store is None:
            store = await self._store.read()
        nodes, grants, aliases = store.nodes, store.grants, store.aliases
        instances = list(self._instances.values())
        inputs = (
            nodes, grants, aliases,
            [(t.instance_id, t.key, t.status, t.endpoint, t.exited) for t in instances],
        )  # fmt: skip
        if inputs == self._routes_from:
            return self._board.version  # the table would be the one published
        await self._board.publish(build_route_table(
            nodes, instances, grants=grants, max_body_bytes=self._max_body_bytes, aliases=aliases,
        ))  # fmt: skip
        self._routes_from = inputs
        return self._board.version

    async def _reconcile_guarded(self, node: NodeRecord, seen: dict[InstanceId, Observed]) -> None:
        subject = ("reconcile", node.key)
        state = self._state(node.key)
        try:
            async with state.lock:
                await self.reconcile(node, seen)
        except StoreUnavailable:
            raise  # the whole tick failed, not this node: logged once by the loop
        except Exception as exc:
            message = await self._events.describe(exc, node)
            if isinstance(exc, PermanentError):
                state.block(node.generation, f"reconcile failed: {message}")
            elif isinstance(exc, TemporaryError):
                state.backoff.retry_after(exc.delay_s, now=self._clock())
            await self._events.failure(
                subject, message, node=node, kind=K.RECONCILE_FAILED, what="reconcile failed",
                exc=None if isinstance(exc, (PermanentError, TemporaryError)) else exc,
            )  # fmt: skip
        else:
            self._events.resolved(subject)

    async def reconcile(self, node: NodeRecord, seen: dict[InstanceId, Observed]) -> None:
        now = self._clock()
        state = self._state(node.key)
        state.quiet = None
        mine = list(state.instances.values())
        for tracked in mine:
            observed = seen.get(tracked.instance_id)
            if observed is None:
                if tracked.status not in (S.UNDEFINED, S.DELETING):
                    tracked.vanish()
            else:
                await self._update_from(tracked, observed, node)
            await self._observe(tracked, node, now)
            await self._tell_probe_failure(tracked, node)
            await self._retry_removal(tracked, node, now)
        backoff = state.backoff
        if not node.deleting and not await self._runtime_ready(node):
            await self._update_node_state(node, backoff)
            return
        at_rest = node.deleting or node.suspended
        if node.spec.image is not None and node.pinned_image is None and not at_rest:
            self._pulls.ensure(node, self._runtimes.get(node.runtime), state, now)
        target = node.spec.min_instances if state.target is None else state.target
        blocked = state.blocked_message(node.generation) is not None
        plan = plan_node(
            node.spec, target, [t.planned() for t in mine],
            generation=node.generation, now=now, deleting=node.deleting,
            backoff_until=math.inf if blocked else backoff.until,
        )  # fmt: skip
        await self._apply(node, plan, now)
        await self._update_node_state(node, backoff)
        self._settle(node, seen, plan)

    async def _runtime_ready(self, node: NodeRecord) -> bool:
        """Whether the node's runtime is there; says so once when that changes."""
        reason = self._runtimes.why_missing(node.runtime)
        state = self._state(node.key)
        if reason is None:
            if state.unavailable is not None:
                state.unavailable = None
                await self._event(
                    node, K.RUNTIME_AVAILABLE, f"runtime {node.runtime} is available again"
                )
            return True
        if state.unavailable is None:
            message = (
                f"runtime {node.runtime} is unavailable: {reason}; the node's instances "
                "start when it is back (pier tries again on its own)"
            )
            state.unavailable = message
            await self._event(node, K.RUNTIME_UNAVAILABLE, message)
        return False

    # autoscaling

    def _current_target(self, node: NodeRecord) -> int | None:
        """The node's target as this tick knows it, else the one it last stored."""
        target = self._state(node.key).target
        return target if target is not None else node.target_instances

    async def _scale(
        self,
        node: NodeRecord,
        loads: Mapping[NodeKey, float] | None,
        now: float,
        ceiling: tuple[int, str] | None = None,
    ) -> int:
        """The node's target instance count, from the gateway's load (see autoscale.py),
        at most ``ceiling``'s count (what the project's quotas leave; see quota_room.py)."""
        state = self._state(node.key)
        if node.deleting or node.suspended:  # a suspended node starts for no load
            state.scaler = None
            return 0
        scaler = state.scaler
        if scaler is None:
            running = state.count(exclude=S.DELETING)
            start = node.target_instances if node.target_instances is not None else running
            start = min(max(start, node.spec.min_instances), node.spec.effective_max)
            scaler = state.scaler = NodeScaler(self._autoscale, start=start, now=now)
        limit = ceiling[0] if ceiling else None
        if loads is not None and scaler.unchanged(now, loads.get(node.key, 0.0), node.spec, limit):
            return scaler.target  # no load, nothing pending: nothing to decide
        before = scaler.target
        if loads is not None:
            scaler.observe(now, loads.get(node.key, 0.0))
        decision = scaler.decide(node.spec, now, ceiling=limit)
        if decision.target != before:
            await self._event(node, K.NODE_SCALED, _scaling_message(node, before, decision))
        await self._tell_quota(node, decision, ceiling[1] if ceiling else None)
        return decision.target

    async def _tell_quota(self, node: NodeRecord, decision: Decision, quota: str | None) -> None:
        """Say once that a quota holds the node back, and again only once it changes."""
        state = self._state(node.key)
        held_by = quota if decision.wanted is not None else None
        if held_by is not None and held_by != state.held_by_quota:
            message = held_message(
                node, target=decision.target, wanted=decision.wanted or 0, quota=held_by
            )
            await self._event(node, K.QUOTA_REACHED, message)
        state.held_by_quota = held_by

    async def _observe(self, tracked: TrackedInstance, node: NodeRecord, now: float) -> None:
        new = observe_status(
            tracked.status,
            running=not tracked.exited,
            window=tracked.window,
            health=node.spec.health,
        )
        if new is tracked.status:
            return
        for step in path_to(tracked.status, new):
            await self._event(
                node,
                K.INSTANCE_STATUS,
                f"instance {tracked.instance_id}: {tracked.status} -> {step}",
                instance=tracked.instance_id,
            )
            tracked.move(step, now=now)
        error = tracked.window.last_error if new is S.UNHEALTHY else None
        tracked.show_error(error)
        if new is S.HEALTHY:
            self._state(node.key).backoff.record_healthy()
        await self._db.run(self._repo.upsert_instance, tracked.record())

    async def _apply(self, node: NodeRecord, plan: Plan, now: float) -> None:
        by_id = dict(self._state(node.key).instances)
        for instance_id in plan.failed:
            await self._record_failure(node, by_id[InstanceId(instance_id)], now)
        removals = [
            self._remove(by_id[InstanceId(i)], reason="replaced")
            for i in plan.delete
            if i in plan.failed
        ]
        await asyncio.gather(*removals)
        for instance_id in plan.delete:
            if instance_id not in plan.failed:
                await self._retire(by_id[InstanceId(instance_id)], node, reason="not needed")
        waiting_for_image = node.spec.image is not None and node.pinned_image is None
        if plan.delete or (plan.create and not waiting_for_image):
            for reason in plan.reasons:
                log.info("reconcile", node=str(node.key), reason=reason)
        for _ in range(0 if waiting_for_image else plan.create):
            if self._start_room(now) <= 0:
                break  # the next tick starts the rest, as others turn Healthy
            await self._create(node, now)  # counted as starting from its first line
        if node.deleting and not self._state(node.key).instances:
            await self._db.run(self._repo.remove_node, node.project, node.name)
            self._forget_node(node.key)
            log.info("node deleted", node=str(node.key))

    def _start_room(self, now: float) -> int:
        """How many more instances may start now (ControllerSettings.max_starting)."""
        slot_s = self._settings.start_slot_s
        starting = sum(
            1 for state in self._nodes.values() for t in state.instances.values()
            if t.status in STARTING and not t.exited and now - t.created_at < slot_s
        )  # fmt: skip
        return max(0, self._max_starting - starting - self._creating)

    def _forget_node(self, key: NodeKey) -> None:
        """Drop all the controller keeps of a removed node, as a whole."""
        self._nodes.pop(key, None)
        self._pulls.forget(key)
        for subject in ("pull", "reconcile"):
            self._events.resolved((subject, key))

    async def _record_failure(self, node: NodeRecord, tracked: TrackedInstance, now: float) -> None:
        tail = await self._log_tail(tracked)
        why = "exited" if tracked.exited else (tracked.window.last_error or "failed")
        if tracked.exited and tracked.exit_code is not None:
            why = f"exited with code {tracked.exit_code}"
            if tracked.exit_code in COMMAND_NOT_RUNNABLE and node.spec.model_in_image:
                why += (
                    f" (the image could not run {' '.join(node.spec.command or DEFAULT_LAUNCHER)}"
                    ": a model in an image needs Python and pier's model server in it)"
                )
        if tracked.exited and tracked.facts.exit_reason:
            why += f": {tracked.facts.exit_reason}"
        delay_s = self._state(node.key).backoff.record_failure(now=now)
        message = f"instance {tracked.instance_id} {why}; next start in {delay_s:g} s"
        if tail:
            message += "\nlast log lines:\n" + "\n".join(tail)
        await self._event(node, K.INSTANCE_FAILED, message, instance=tracked.instance_id)

    async def _log_tail(self, tracked: TrackedInstance) -> list[str]:
        """The instance's last log lines, best effort: none when they cannot be read."""
        runtime = self._runtimes[tracked.runtime]
        lines: list[str] = []
        try:
            async for line in runtime.logs(tracked.instance_id, follow=False, tail=LOG_TAIL_LINES):
                lines.append(line)
        except (PierError, OSError):
            pass
        except Exception as exc:
            log.warning("instance logs unreadable", instance=tracked.instance_id,
                        error=describe_failure(exc))  # fmt: skip
        return lines

    async def _create(self, node: NodeRecord, now: float) -> None:
        instance_id = InstanceId(f"{node.name}-{secrets.token_hex(3)}")
        runtime_name = node.runtime
        tracked = TrackedInstance(
            instance_id=instance_id,
            key=node.key,
            runtime=runtime_name,
            generation=node.generation,
            created_at=now,
            view=InstanceView(instance_id, S.UNDEFINED, since=now),
        )
        self._creating += 1  # a start under way, until its instance is tracked
        try:
            spec = await self._instance_spec(node, instance_id)
            await self._db.run(self._repo.upsert_instance, tracked.record())  # before it exists
        finally:
            self._creating -= 1
        state = self._state(node.key)
        state.instances[instance_id] = tracked
        try:
            seen = await self._runtimes[runtime_name].create(spec)
        except Exception as exc:
            self._untrack(tracked)
            await self._db.run(self._repo.remove_instance, instance_id)
            await self._create_failed(node, state, exc, now)
            return
        await self._update_from(tracked, seen, node)
        await self._observe(tracked, node, self._clock())
        await self._event(
            node,
            K.INSTANCE_CREATED,
            f"instance {instance_id} created",
            instance=instance_id,
        )

    async def _instance_spec(self, node: NodeRecord, instance_id: InstanceId) -> InstanceSpec:
        model = None
        if node.spec.model is not None:
            model = await self._db.run(
                self._repo.get_model, node.project, node.spec.model, node.spec.model_version
            )
        return instance_spec(
            node,
            instance_id,
            model=model,
            models_dir=self._models_dir,
            queue_limit=self._settings.model_queue_limit,
            default_max_body_bytes=self._max_body_bytes,
        )

    async def _create_failed(
        self, node: NodeRecord, state: NodeState, exc: Exception, now: float
    ) -> None:
        """A PermanentError blocks the node's spec (no start again until it changes); any
        other failure is tried again after the backoff (a TemporaryError's own delay)."""
        message = f"could not start an instance: {exc}"
        if isinstance(exc, PermanentError):
            message += "; not retried until the node's spec changes"
            state.block(node.generation, redact(message, await self._events.secrets_of(node)))
        else:
            message += f"; next try in {state.backoff.after(exc, now=now):g} s"
        await self._event(node, K.INSTANCE_CREATE_FAILED, message)

    async def _retire(self, tracked: TrackedInstance, node: NodeRecord, *, reason: str) -> None:
        """Take a working instance out of the routes, let the gateway finish the requests
        it has in flight to it (at most the node's timeout), then stop it; in the
        background, so one long drain does not hold up the loop."""
        if tracked.instance_id in self._drains:
            return
        routed = tracked.status is S.HEALTHY and not tracked.exited
        await self._mark_deleting(tracked)
        self._start_removal(tracked, node, routed=routed, reason=reason)

    def _start_removal(
        self, tracked: TrackedInstance, node: NodeRecord, *, routed: bool, reason: str
    ) -> None:
        """Drain (when it was ``routed``) and remove the Deleting instance in the background."""
        tracked.leave(reason)
        drain_s = node.spec.timeout_s if routed else 0.0
        task = asyncio.create_task(
            self._drain_then_remove(tracked, drain_s, reason=reason),
            name=f"retire {tracked.instance_id}",
        )
        self._drains[tracked.instance_id] = task
        task.add_done_callback(lambda _: self._drains.pop(tracked.instance_id, None))

    async def _drain_then_remove(
        self, tracked: TrackedInstance, drain_s: float, *, reason: str
    ) -> None:
        try:
            if drain_s > 0 and self._gateway is not None:
                await self._drain_best_effort(tracked, self._gateway, min(drain_s, MAX_DRAIN_S))
            await self._remove(tracked, reason=reason)
        except Exception:  # e.g. the store; the reconcile retries (_retry_removal)
            log.exception("removing an instance failed", instance=tracked.instance_id)

    async def _drain_best_effort(
        self, tracked: TrackedInstance, gateway: GatewayView, wait_s: float
    ) -> None:
        """Draining is a courtesy: when it fails, the instance goes anyway."""
        try:
            await self._drain(tracked, gateway, wait_s)
        except Exception as exc:
            log.warning("drain failed", instance=tracked.instance_id,
                        error=describe_failure(exc))  # fmt: skip

    async def _drain(self, tracked: TrackedInstance, gateway: GatewayView, wait_s: float) -> None:
        """Return once the gateway serves routes without ``tracked`` and has no request in
        flight to it, or after ``wait_s``."""
        version = await self._publish_routes()
        deadline = self._clock() + wait_s
        while self._clock() < deadline:
            status = await gateway.status()
            if status is None:
                return  # no gateway: nothing is in flight through it
            if status.routes_version >= version and tracked.instance_id not in status.draining:
                return
            await asyncio.sleep(DRAIN_POLL_S)
        log.info("drain timed out", instance=tracked.instance_id, wait_s=wait_s)

    async def _mark_deleting(self, tracked: TrackedInstance) -> None:
        """Record Deleting in the store, then in memory: if the store fails, the instance
        stays as it was and a later tick decides again."""
        if tracked.status is S.DELETING:
            return
        before = tracked.move(S.DELETING, now=self._clock())
        try:
            await self._db.run(self._repo.upsert_instance, tracked.record())
        except StoreUnavailable:
            tracked.undo(before)
            raise

    async def _remove(self, tracked: TrackedInstance, *, reason: str | None) -> None:
        """Stop and forget the instance. When the runtime fails to, the instance stays
        Deleting and the reconcile tries again after a backoff (_retry_removal)."""
        await self._mark_deleting(tracked)
        tracked.leave(reason)
        try:
            await tracked.stop_probe()
            runtime = self._runtimes[tracked.runtime]
            await runtime.delete(tracked.instance_id, grace_s=self._settings.stop_grace_s)
        except Exception as exc:
            await self._removal_failed(tracked, exc)
            return
        self._events.resolved(("probe", tracked.instance_id))
        if self._events.resolved(("delete", tracked.instance_id)):
            log.info("instance removed after all", instance=tracked.instance_id)
        self._untrack(tracked)
        await self._db.run(self._repo.remove_instance, tracked.instance_id)
        if reason is not None:
            await self._db.run(
                self._repo.add_event,
                tracked.key.project,
                node=tracked.key.node,
                instance=tracked.instance_id,
                kind=K.INSTANCE_DELETED,
                message=f"instance {tracked.instance_id} deleted ({reason})",
            )

    async def _update_node_state(self, node: NodeRecord, backoff: CrashBackoff) -> None:
        state = self._state(node.key)
        reached = node.reached_minimum or state.count(S.HEALTHY) >= node.spec.min_instances
        message = None
        blocked = state.blocked_message(node.generation)
        if state.unavailable is not None:
            message = state.unavailable
        elif blocked is not None:
            message = blocked
        elif pulling := self._pulls.message(node.key):
            message = pulling
        elif backoff.is_crash_looping:
            last = await self._db.run(self._repo.list_events, node.project, node.name, limit=20)
            failures = [e.message for e in last if e.kind in FAILURES]
            message = failures[-1] if failures else "instances keep failing"
        crash_looping = backoff.is_crash_looping or blocked is not None
        stored = (node.reached_minimum, node.message, node.crash_looping, node.target_instances)
        if stored == (reached, message, crash_looping, state.target):
            return  # as the store has it (read this tick): nothing to write
        await self._db.run(
            self._repo.set_node_state,
            node.project,
            node.name,
            reached_minimum=reached,
            message=message,
            crash_looping=crash_looping,
            target_instances=state.target,
            suspended=node.suspended,
        )

    # helpers of the tick

    async def _event(
        self, node: NodeRecord, kind: EventKind, message: str, *, instance: str | None = None
    ) -> None:
        await self._events.add(node, kind, message, instance=instance)

    # unexpected failures: told once per change, retried with a backoff

    async def _tell_probe_failure(self, tracked: TrackedInstance, node: NodeRecord) -> None:
        """Tell a health probe that cannot run (once per change of its error)."""
        subject = ("probe", tracked.instance_id)
        error = tracked.window.unexpected_error
        if error is None:
            self._events.resolved(subject)
            return
        await self._events.failure(
            subject, error, node=node, kind=K.PROBE_FAILED, instance=tracked.instance_id,
            what=f"the health check of instance {tracked.instance_id} could not run",
            then="; retrying with a backoff",
        )  # fmt: skip

    async def _removal_failed(self, tracked: TrackedInstance, exc: Exception) -> None:
        """The instance stays Deleting; _retry_removal tries again after a backoff."""
        delay_s = tracked.removal_failed(
            exc, base_s=self._settings.backoff_base_s, max_s=self._settings.backoff_max_s,
            now=self._clock(),
        )  # fmt: skip
        node: NodeRecord | None = None
        with contextlib.suppress(NotFound):
            node = await self._db.run(self._repo.get_node, tracked.key.project, tracked.key.node)
        await self._events.failure(
            ("delete", tracked.instance_id), await self._events.describe(exc, node), node=node,
            kind=K.DELETE_FAILED, instance=tracked.instance_id,
            what=f"instance {tracked.instance_id} could not be removed",
            then=f"; retrying with a backoff (next try in {delay_s:g} s)",
        )  # fmt: skip

    async def _retry_removal(self, tracked: TrackedInstance, node: NodeRecord, now: float) -> None:
        """A Deleting instance that nothing is removing any more (its removal failed) is
        removed again once its backoff is over."""
        if tracked.status is not S.DELETING or tracked.instance_id in self._drains:
            return
        if tracked.removal_backoff is None or now >= tracked.removal_backoff.until:
            await self._retire(tracked, node, reason=tracked.removal_reason or "not needed")


def _retrieve_store_failure(task: asyncio.Task[None]) -> None:
    """A reconcile that outlived its tick and then met a failing store: the next tick
    meets it too and tells it; retrieved here so that asyncio does not."""
    if not task.cancelled():
        task.exception()


def _scaling_message(node: NodeRecord, before: int, decision: Decision) -> str:
    spec = node.spec
    if decision.concurrency is None:
        why = f"within the range {spec.min_instances}-{spec.effective_max}"
    else:
        why = (
            f"{decision.concurrency:.1f} requests in flight on average, "
            f"target {spec.target_in_flight:g} per instance"
        )
    return f"scaling {node.name} from {before} to {decision.target} instances: {why}"
