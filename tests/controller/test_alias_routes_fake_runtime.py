"""The controller publishes aliases into the route table, in-process on a real store with
a fake runtime: a node takes alias traffic (``ready``) only once it is Healthy at its
minimum, and an alias switch is one new table version holding the whole change."""

from __future__ import annotations

from pathlib import Path

from tests.controller.fake_runtime import (
    TCP_HEALTH,
    FakeClock,
    FakeRuntime,
    add_image_node,
    controllers,
    serve,
    tick_until,
)

from pier.controller.routes import RouteBoard
from pier.domain.instance_status import InstanceStatus
from pier.domain.routes import AliasTarget
from pier.services.aliases import AliasService
from pier.store.repository import Repository


def healthy(repo: Repository, node: str) -> int:
    instances = repo.list_instances("default", node)
    return sum(1 for i in instances if i.status is InstanceStatus.HEALTHY)


def targets(board: RouteBoard) -> tuple[AliasTarget, ...]:
    return board.table.aliases["default/prod"].targets


async def test_a_node_below_its_minimum_is_not_ready(repo: Repository, tmp_path: Path) -> None:
    async with controllers(repo, tmp_path) as make:
        runtime = FakeRuntime(serve=True)
        add_image_node(repo, "v1", health=TCP_HEALTH)
        add_image_node(repo, "v2", health=TCP_HEALTH, min_instances=2)
        board = RouteBoard()
        controller = make(runtime, clock=FakeClock(), board=board)
        spec = {"nodes": [{"node": "v1", "share": 80}, {"node": "v2"}], "sticky_header": "X-S"}
        AliasService(repo).create("default", "prod", spec, actor="admin")
        await controller.tick()
        route = board.table.aliases["default/prod"]
        assert [(t.node, t.weight, t.ready) for t in route.targets] == [
            ("v1", 80, False),
            ("v2", 20, False),
        ]
        assert route.sticky_header == "x-s"
        await tick_until(controller, lambda: healthy(repo, "v1") == 1 and targets(board)[0].ready)
        await tick_until(controller, lambda: healthy(repo, "v2") == 2)
        v1, v2 = targets(board)
        assert v1.ready and v2.ready


async def test_an_alias_switch_is_one_new_version(repo: Repository, tmp_path: Path) -> None:
    async with controllers(repo, tmp_path) as make:
        runtime = FakeRuntime(serve=True)
        add_image_node(repo, "v1", health=TCP_HEALTH)
        add_image_node(repo, "v2", health=TCP_HEALTH)
        board = RouteBoard()
        controller = make(runtime, clock=FakeClock(), board=board)
        aliases = AliasService(repo, routes=board)
        aliases.create("default", "prod", {"nodes": [{"node": "v1"}]}, actor="admin")
        await tick_until(controller, lambda: healthy(repo, "v1") + healthy(repo, "v2") == 2)
        await tick_until(controller, lambda: all(t.ready for t in targets(board)))
        before = board.version
        serve(board, before)  # a gateway serves it
        assert aliases.get("default", "prod").routed

        aliases.put("default", "prod", {"nodes": [{"node": "v2"}]}, actor="admin")
        assert not aliases.get("default", "prod").routed  # stored, not yet published
        await controller.tick()
        assert board.version == before + 1
        assert [(t.node, t.weight, t.ready) for t in targets(board)] == [("v2", 100, True)]
        assert not aliases.get("default", "prod").routed  # published, not yet served
        serve(board, board.version)
        assert aliases.get("default", "prod").routed
        await controller.tick()  # nothing changed: no new version
        assert board.version == before + 1

        aliases.delete("default", "prod", actor="admin")
        await controller.tick()
        assert "default/prod" not in board.table.aliases


async def test_a_suspended_node_is_not_ready_even_at_a_minimum_of_zero(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        add_image_node(repo, "v1", health=TCP_HEALTH, min_instances=0)
        add_image_node(repo, "v2", health=TCP_HEALTH, min_instances=0)
        board = RouteBoard()
        controller = make(FakeRuntime(serve=True), clock=FakeClock(), board=board)
        spec = {"nodes": [{"node": "v1", "share": 50}, {"node": "v2"}]}
        AliasService(repo).create("default", "prod", spec, actor="admin")
        await controller.tick()
        assert [t.ready for t in targets(board)] == [True, True]  # nothing is missing
        repo.set_node_suspended("default", "v2", suspended=True)
        await controller.tick()
        assert [(t.node, t.ready) for t in targets(board)] == [("v1", True), ("v2", False)]
