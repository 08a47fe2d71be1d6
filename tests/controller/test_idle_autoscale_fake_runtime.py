"""A tick over nodes at zero with no load does no autoscaling work for them, and a node
at zero whose load moves (a request waiting at the gateway) is scaled up at the next
tick (in process, a real store, the fake runtime and gateway, a clock moved by the test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.controller.fake_runtime import (
    TCP_HEALTH,
    FakeClock,
    FakeGateway,
    FakeRuntime,
    add_image_node,
    controllers,
    tick_until,
)

from pier.controller.autoscale import Decision, NodeScaler
from pier.domain.specs import NodeSpec
from pier.store.repository import Repository


async def test_idle_nodes_at_zero_need_no_decision_until_their_load_moves(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decided: list[int] = []
    decide = NodeScaler.decide

    def counted(self: NodeScaler, spec: NodeSpec, now: float, **kwargs: int | None) -> Decision:
        decided.append(spec.min_instances)
        return decide(self, spec, now, **kwargs)

    monkeypatch.setattr(NodeScaler, "decide", counted)
    names = [f"z{i}" for i in range(5)]
    gateway = FakeGateway(in_flight_seconds=dict.fromkeys(names, 0.0))
    await gateway.start()
    clock = FakeClock()
    try:
        async with controllers(repo, tmp_path) as make:
            runtime = FakeRuntime(serve=True)
            for name in names:
                add_image_node(repo, name, min_instances=0, max_instances=2, health=TCP_HEALTH)
            controller = make(runtime, clock=clock, gateway=gateway, autoscale_window_s=2.0)
            for _ in range(8):  # past the window: the scalers know there is no load
                clock.advance(0.5)
                await controller.tick()
            decided.clear()
            for _ in range(5):
                clock.advance(0.5)
                await controller.tick()
            assert decided == []  # five idle ticks, five idle nodes: no decision at all
            assert runtime.running == {}

            gateway.in_flight_seconds["z3"] += 1.0  # a request waits for z3
            clock.advance(0.5)
            await controller.tick()
            assert decided == [0]  # z3 alone
            await tick_until(controller, lambda: len(runtime.running) == 1)
            [started] = runtime.running.values()
            assert started.node.node == "z3"
    finally:
        await gateway.stop()
