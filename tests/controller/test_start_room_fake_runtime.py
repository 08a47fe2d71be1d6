"""A burst of nodes starts its instances a few at a time (ControllerSettings.max_starting):
an instance counts as starting from its creation until it turns Healthy, or for
``start_slot_s`` at most, so one slow to come up holds the others back no longer."""

from __future__ import annotations

from pathlib import Path

from tests.controller.fake_runtime import (
    TCP_HEALTH,
    FakeClock,
    FakeRuntime,
    add_image_node,
    controllers,
    tick_until,
)

from pier.store.repository import Repository


async def test_at_most_max_starting_instances_start_at_once(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        never_healthy = FakeRuntime()  # no endpoint: its instances never pass a check
        clock = FakeClock()
        for i in range(5):
            add_image_node(repo, f"n{i}", health=TCP_HEALTH)
        controller = make(never_healthy, clock=clock, max_starting=2, start_slot_s=30)
        await tick_until(controller, lambda: never_healthy.creates == 2)
        for _ in range(5):
            await controller.tick()
        assert never_healthy.creates == 2  # the other three wait for a place
        clock.advance(30)  # the two starting ones had their slot: the next two start
        await tick_until(controller, lambda: never_healthy.creates == 4)


async def test_an_instance_turning_healthy_gives_its_place_to_the_next(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        runtime = FakeRuntime(serve=True)
        for i in range(4):
            add_image_node(repo, f"n{i}", health=TCP_HEALTH)
        controller = make(runtime, clock=FakeClock(), max_starting=1, start_slot_s=3600)
        await tick_until(controller, lambda: len(runtime.created) == 4)  # one after another
        healthy = [r for r in repo.list_instances() if r.status == "Healthy"]
        assert len(healthy) >= 3
