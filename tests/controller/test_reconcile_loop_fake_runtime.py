"""The reconcile loop, in-process on a real store with a fake runtime and a settable clock
(tests/controller/fake_runtime.py): crash loops back off, a restart adopts what runs,
autoscaling stays within min..max, an instance leaves the routes and drains before it is
deleted, and a rolling update replaces no more than maintenance_limit at a time.

The loop is stepped with explicit ticks; time moves only when a test moves the clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.controller.fake_runtime import (
    TCP_HEALTH,
    FakeClock,
    FakeGateway,
    FakeRuntime,
    add_image_node,
    controllers,
    events,
    tick_until,
)

from pier.controller.loop import Controller
from pier.domain.instance_status import InstanceStatus
from pier.domain.specs import parse_node_spec
from pier.runtimes.docker.images import ImagePullFailed
from pier.store.repository import Repository

S = InstanceStatus
Make = Callable[..., Controller]


def spec_of(**spec: Any) -> dict[str, Any]:
    return {"image": "127.0.0.1:5000/echo:1", "port": 8080, **spec}


def statuses(repo: Repository) -> list[S]:
    return [r.status for r in repo.list_instances("default", "web")]


def live(runtime: FakeRuntime) -> int:
    return len(runtime.running)


async def test_a_crash_loop_backs_off_doubling_up_to_the_max(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        clock = FakeClock()
        runtime = FakeRuntime(exit_on_start=1)
        add_image_node(repo)
        controller = make(runtime, clock=clock, backoff_base_s=1.0, backoff_max_s=8.0)

        for n, delay_s in enumerate([1, 2, 4, 8, 8], start=1):
            await tick_until(controller, lambda n=n: len(events(repo, "instance_failed")) >= n)
            failed = events(repo, "instance_failed")
            assert f"exited with code 1; next start in {delay_s} s" in failed[-1].message
            starts = len(runtime.created)
            await controller.tick()  # the backoff holds: no start before the clock moves
            await controller.tick()
            assert len(runtime.created) == starts
            clock.advance(delay_s)
        node = repo.get_node("default", "web")
        assert node.crash_looping
        assert node.message is not None and "exited with code 1" in node.message


async def test_a_restarted_controller_adopts_what_runs_and_starts_no_duplicate(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        runtime = FakeRuntime(serve=True)
        add_image_node(repo, min_instances=2, health=TCP_HEALTH)
        first = make(runtime, clock=FakeClock())
        await tick_until(first, lambda: statuses(repo) == [S.HEALTHY, S.HEALTHY])
        await first.stop(stop_instances=False)
        before = sorted(runtime.running)

        second = make(runtime, clock=FakeClock())
        adopted = await second.adopt()
        assert (adopted.instances, adopted.nodes, adopted.removed, adopted.lost) == (2, 1, 0, 0)
        await tick_until(second, lambda: statuses(repo) == [S.HEALTHY, S.HEALTHY])
        for _ in range(5):
            await second.tick()
        assert sorted(runtime.running) == before and len(runtime.created) == 2
        assert len(events(repo, "instance_adopted")) == 2


async def test_autoscaling_follows_the_load_within_min_and_max(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        clock = FakeClock()
        gateway = FakeGateway(in_flight_seconds={"web": 0.0})
        await gateway.start()
        runtime = FakeRuntime(serve=True)
        add_image_node(
            repo, min_instances=1, max_instances=3, target_in_flight=1, health=TCP_HEALTH
        )
        controller = make(
            runtime, clock=clock, gateway=gateway, autoscale_window_s=2.0, scale_down_delay_s=5.0
        )
        try:
            counts: list[int] = []

            async def step(concurrency: float) -> int:
                gateway.in_flight_seconds["web"] += concurrency * 0.5
                clock.advance(0.5)
                await controller.tick()
                counts.append(live(runtime))
                return counts[-1]

            await tick_until(controller, lambda: statuses(repo) == [S.HEALTHY])
            for _ in range(20):  # ten requests in flight: more than three instances can take
                await step(10.0)
            assert live(runtime) == 3 and max(counts) == 3
            assert repo.get_node("default", "web").target_instances == 3
            counts.clear()
            for _ in range(40):  # idle for longer than the scale-down delay
                await step(0.0)
            await tick_until(controller, lambda: live(runtime) == 1)
            assert min(counts) >= 1
            scaled = [e.message for e in events(repo, "node_scaled")]
            assert any("from 1 to 3" in m for m in scaled) and "to 1 instances" in scaled[-1]
        finally:
            await gateway.stop()


async def test_an_instance_drains_before_it_is_deleted(repo: Repository, tmp_path: Path) -> None:
    async with controllers(repo, tmp_path) as make:
        gateway = FakeGateway()
        await gateway.start()
        runtime = FakeRuntime(serve=True)
        add_image_node(repo, health=TCP_HEALTH)
        controller = make(runtime, clock=FakeClock(), gateway=gateway)
        try:
            await tick_until(controller, lambda: statuses(repo) == [S.HEALTHY])
            (instance_id,) = runtime.running
            gateway.draining = {instance_id: 1}  # a request still in flight to it
            repo.mark_node_deleting("default", "web")
            reads = gateway.health_reads
            await tick_until(controller, lambda: gateway.health_reads >= reads + 5)
            assert instance_id in runtime.running  # not deleted while a request is in flight
            assert statuses(repo) == [S.DELETING]

            gateway.draining = {}
            await tick_until(controller, lambda: not repo.list_nodes())
            assert runtime.deleted == [instance_id]
        finally:
            await gateway.stop()


async def test_a_rolling_update_replaces_at_most_maintenance_limit_at_a_time(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        runtime = FakeRuntime(serve=True)
        spec: dict[str, Any] = {
            "image": "127.0.0.1:5000/echo:1", "port": 8080, "min_instances": 3,
            "maintenance_limit": 1, "health": TCP_HEALTH,
        }  # fmt: skip
        add_image_node(repo, **{k: v for k, v in spec.items() if k not in ("image", "port")})
        controller = make(runtime, clock=FakeClock())
        await tick_until(controller, lambda: statuses(repo) == [S.HEALTHY] * 3)
        old = set(runtime.running)

        updated = repo.update_node_spec(
            "default", "web", parse_node_spec({**spec, "env": {"VERSION": "2"}})
        )
        assert updated.generation == 2

        def replaced() -> bool:
            rows = repo.list_instances("default", "web")
            healthy = [r for r in rows if r.status is S.HEALTHY]
            assert len(healthy) >= 3 - 1, rows  # never fewer than target - maintenance_limit
            assert len(runtime.running) <= 3 + 1  # never more than target + maintenance_limit
            return len(healthy) == 3 and all(r.generation == 2 for r in rows)

        await tick_until(controller, replaced)
        assert not old & set(runtime.running)
        assert len(runtime.created) == 6


async def test_a_deleted_node_leaves_nothing_behind_for_a_new_node_of_its_name(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        runtime = FakeRuntime(pull_errors=[ImagePullFailed("127.0.0.1:5000/echo:1", "denied")])
        repo.add_node("default", "web", parse_node_spec(spec_of()), runtime="docker")
        controller = make(runtime, clock=FakeClock())
        await tick_until(controller, lambda: events(repo, "image_pull_failed"))
        await tick_until(controller, lambda: repo.get_node("default", "web").message)
        repo.mark_node_deleting("default", "web")
        await tick_until(controller, lambda: not repo.list_nodes())

        add_image_node(repo)  # the same name again, its image pinned
        await tick_until(controller, lambda: runtime.running)
        await controller.tick()
        assert repo.get_node("default", "web").message is None  # not the old pull's error


async def test_a_slow_node_does_not_hold_up_the_others(repo: Repository, tmp_path: Path) -> None:
    async with controllers(repo, tmp_path) as make:
        gate = asyncio.Event()
        runtime = FakeRuntime(held={"slow": gate})
        add_image_node(repo, "slow")
        add_image_node(repo, "fast")
        controller = make(runtime, clock=FakeClock(), tick_s=0.05)
        await tick_until(controller, lambda: runtime.created)  # the slow one's start hangs
        (instance_id,) = runtime.created
        assert instance_id.startswith("fast-")
        repo.mark_node_deleting("default", "fast")
        await tick_until(controller, lambda: [n.name for n in repo.list_nodes()] == ["slow"])

        gate.set()
        await tick_until(controller, lambda: len(runtime.created) == 2)
        assert runtime.created[1].startswith("slow-")


async def test_a_suspended_node_drains_stops_and_starts_for_no_load_until_resumed(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        clock = FakeClock()
        gateway = FakeGateway(in_flight_seconds={"web": 0.0})
        await gateway.start()
        runtime = FakeRuntime(serve=True)
        add_image_node(
            repo, min_instances=1, max_instances=3, target_in_flight=1, health=TCP_HEALTH
        )
        controller = make(runtime, clock=clock, gateway=gateway, autoscale_window_s=2.0)
        try:
            await tick_until(controller, lambda: statuses(repo) == [S.HEALTHY])
            (first,) = runtime.running
            gateway.draining = {first: 1}  # a request still in flight to it
            repo.set_node_suspended("default", "web", suspended=True)
            reads = gateway.health_reads
            await tick_until(controller, lambda: gateway.health_reads >= reads + 5)
            assert first in runtime.running and statuses(repo) == [S.DELETING]
            route = controller._board.table.nodes["default/web"]
            assert route.suspended and not route.instances and not route.scales_from_zero

            gateway.draining = {}
            await tick_until(controller, lambda: not runtime.running)
            for _ in range(20):  # ten requests in flight, ten seconds long: no start
                gateway.in_flight_seconds["web"] += 10.0 * 0.5
                clock.advance(0.5)
                await controller.tick()
            assert runtime.created == [first] and not repo.list_instances("default", "web")

            repo.set_node_suspended("default", "web", suspended=False)
            await tick_until(controller, lambda: statuses(repo) == [S.HEALTHY])
            assert not controller._board.table.nodes["default/web"].suspended
        finally:
            await gateway.stop()
