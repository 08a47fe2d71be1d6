"""What an idle control plane does on a tick where nothing changed: no store write, no
store call per node, no new route table for the gateway (in-process, a real store, the
fake runtime of fake_runtime.py, a clock that moves only when told)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from tests.controller.fake_runtime import (
    TCP_HEALTH,
    FakeClock,
    FakeRuntime,
    add_image_node,
    controllers,
    tick_until,
)

from pier.controller.loop import Controller
from pier.controller.routes import RouteBoard
from pier.domain.instance_status import InstanceStatus
from pier.domain.names import NodeKey
from pier.runtimes.base import Observed
from pier.settings import ControllerSettings
from pier.store.repository import Repository

S = InstanceStatus


class Statements:
    """Every SQL statement the store runs, as the engine reports them."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(statement)

    @property
    def writes(self) -> list[str]:
        return [s for s in self.seen if s.lstrip().split()[0].upper() in {"INSERT", "UPDATE",
                                                                           "DELETE"}]  # fmt: skip


@pytest.fixture
def store(repo: Repository, store_engine: Engine) -> tuple[Repository, Statements]:
    statements = Statements()
    event.listen(store_engine, "before_cursor_execute", statements)
    return repo, statements


def all_healthy(repo: Repository, nodes: int) -> bool:
    rows = repo.list_instances()
    return len(rows) == nodes and all(r.status is S.HEALTHY for r in rows)


async def idle_tick(controller: Controller, statements: Statements) -> list[str]:
    """The statements of one more tick (after the controller settled)."""
    statements.seen.clear()
    await controller.tick()
    return list(statements.seen)


async def test_an_unchanged_tick_writes_nothing_and_reads_the_same_for_any_node_count(
    store: tuple[Repository, Statements], tmp_path: Path
) -> None:
    repo, statements = store
    board = RouteBoard()
    async with controllers(repo, tmp_path) as make:
        runtime = FakeRuntime(serve=True)
        add_image_node(repo, "a", health=TCP_HEALTH)
        controller = make(runtime, clock=FakeClock(), board=board)
        await tick_until(controller, lambda: all_healthy(repo, 1))
        await tick_until(controller, lambda: repo.get_node("default", "a").reached_minimum)
        await controller.tick()
        one_node = await idle_tick(controller, statements)
        version = board.version
        for name in ("b", "c", "d"):
            add_image_node(repo, name, health=TCP_HEALTH)
        await tick_until(controller, lambda: all_healthy(repo, 4))
        await tick_until(
            controller, lambda: all(n.reached_minimum for n in repo.list_nodes("default"))
        )
        await controller.tick()
        assert board.version > version  # the new nodes' routes went out
        version = board.version
        for _ in range(3):
            four_nodes = await idle_tick(controller, statements)
            assert not statements.writes
            assert len(four_nodes) == len(one_node), four_nodes
        assert board.version == version  # no new table: the gateway's long poll sleeps on


async def test_a_node_at_rest_is_left_alone_until_something_it_depends_on_changes(
    store: tuple[Repository, Statements], tmp_path: Path
) -> None:
    repo, _ = store
    async with controllers(repo, tmp_path) as make:
        runtime = FakeRuntime(serve=True)
        add_image_node(repo, "a", health=TCP_HEALTH)
        add_image_node(repo, "b", health=TCP_HEALTH)
        controller = make(runtime, clock=FakeClock())
        reconciled: list[str] = []
        reconcile = controller.reconcile

        async def counted(node: Any, seen: Any) -> None:
            reconciled.append(node.name)
            await reconcile(node, seen)

        controller.reconcile = counted  # type: ignore[method-assign]
        await tick_until(controller, lambda: all_healthy(repo, 2))
        await tick_until(
            controller, lambda: all(n.reached_minimum for n in repo.list_nodes("default"))
        )
        await controller.tick()
        reconciled.clear()
        for _ in range(3):
            await controller.tick()
        assert reconciled == []  # both at rest: no reconcile at all

        [victim] = [i for i in runtime.running if i.startswith("a-")]
        await runtime.crash(victim)
        await tick_until(controller, lambda: "a" in reconciled)  # what the runtime says moved
        assert "b" not in reconciled
        await tick_until(controller, lambda: victim not in runtime.running)  # replaced


def node_reads(statements: list[str]) -> list[str]:
    return [s for s in statements if "FROM nodes" in s]


async def test_an_unchanged_tick_reads_no_node_row_and_a_change_reads_only_changed_rows(
    store: tuple[Repository, Statements], tmp_path: Path
) -> None:
    repo, statements = store
    board = RouteBoard()
    async with controllers(repo, tmp_path) as make:
        runtime = FakeRuntime(serve=True)
        for name in ("a", "b", "c"):
            add_image_node(repo, name, health=TCP_HEALTH)
        controller = make(runtime, clock=FakeClock(), board=board)
        await tick_until(controller, lambda: all_healthy(repo, 3))
        await tick_until(
            controller, lambda: all(n.reached_minimum for n in repo.list_nodes("default"))
        )
        await controller.tick()
        for _ in range(3):
            idle = await idle_tick(controller, statements)
            assert node_reads(idle) == [], idle
            assert len(idle) == 1, idle  # the change counter, and nothing else

        repo.set_node_suspended("default", "a", suspended=True)
        changed = await idle_tick(controller, statements)
        listing = node_reads(changed)[0]  # then the controller's own write of a's state
        assert "WHERE nodes.change_seq >" in listing, changed  # the changed rows only
        await tick_until(controller, lambda: len(runtime.running) == 2)  # a's stopped
        await tick_until(controller, lambda: not board.table.nodes["default/a"].instances)

        repo.mark_node_deleting("default", "b")  # a removed row is read as a whole read
        await tick_until(controller, lambda: [n.name for n in repo.list_nodes()] == ["a", "c"])
        await tick_until(controller, lambda: "default/b" not in board.table.nodes)
        assert board.table.nodes["default/c"].instances


class CountedRuntime(FakeRuntime):
    """A fake runtime that counts how often it is listed."""

    lists: int = 0

    async def list(self, *, node: NodeKey | None = None) -> list[Observed]:
        self.lists += 1
        return await super().list(node=node)


async def test_a_tick_lists_only_the_runtimes_that_nodes_are_bound_to(
    store: tuple[Repository, Statements], tmp_path: Path
) -> None:
    repo, _ = store
    docker, local = CountedRuntime(), CountedRuntime(name="local")
    add_image_node(repo, "a", health=TCP_HEALTH)  # on docker
    controller = Controller(
        repo, {"docker": docker, "local": local}, settings=ControllerSettings(),
        models_dir=tmp_path, board=RouteBoard(),
    )  # fmt: skip
    try:
        adopted_lists = local.lists
        for _ in range(3):
            await controller.tick()
        assert docker.lists >= 3
        assert local.lists == adopted_lists  # no node runs there: nothing to look at
    finally:
        await controller.stop(stop_instances=True)
