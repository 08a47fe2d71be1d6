"""The autoscaler stops at the project's quota, with a ``quota_reached`` event naming it,
in-process on a real store with the fake runtime and a settable clock."""

from __future__ import annotations

from pathlib import Path

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

from pier.domain.quotas import ProjectLimits
from pier.store.repository import Repository


async def test_the_autoscaler_stops_at_the_vcpu_quota_and_says_which(
    repo: Repository, tmp_path: Path
) -> None:
    # c1.2 is 2 vCPUs: "other" holds 2 of the 8 allowed, so "web" may have 3, not 5
    repo.set_project_limits("default", ProjectLimits(max_vcpus=8))
    add_image_node(repo, "other", min_instances=1, health=TCP_HEALTH)
    add_image_node(repo, min_instances=1, max_instances=5, target_in_flight=1, health=TCP_HEALTH)
    async with controllers(repo, tmp_path) as make:
        clock = FakeClock()
        gateway = FakeGateway(in_flight_seconds={"web": 0.0})
        await gateway.start()
        runtime = FakeRuntime(serve=True)
        controller = make(runtime, clock=clock, gateway=gateway, autoscale_window_s=2.0)
        try:

            async def busy() -> None:  # ten requests in flight: five instances' worth
                gateway.in_flight_seconds["web"] += 10.0 * 0.5
                clock.advance(0.5)
                await controller.tick()

            await tick_until(controller, lambda: len(runtime.running) == 2)
            for _ in range(20):
                await busy()
            await tick_until(controller, lambda: events(repo, "quota_reached"))
            for _ in range(10):
                await busy()
            assert repo.get_node("default", "web").target_instances == 3
            assert len([r for r in runtime.running if "web" in r]) == 3
            (held,) = events(repo, "quota_reached")  # told once, not every tick
            assert "held at 3 instances" in held.message and "asks for 5" in held.message
            assert "max_vcpus" in held.message

            repo.set_project_limits("default", ProjectLimits())  # the quota is lifted
            for _ in range(10):
                await busy()
            assert repo.get_node("default", "web").target_instances == 5
        finally:
            await gateway.stop()
