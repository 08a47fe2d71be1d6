"""The route board: versions only for real changes, long polls woken by them, and which
nodes every gateway serves, as their reports say (what `--wait` waits for after
Healthy)."""

from __future__ import annotations

import asyncio

from tests.controller.fake_runtime import serve

from pier.controller.routes import RouteBoard
from pier.domain.routes import NodeRoute, RouteChanges, RouteTable
from pier.gateway.sync import RouteSync


def table(*nodes: str) -> RouteTable:
    return RouteTable(nodes={f"default/{n}": NodeRoute(project="default", node=n) for n in nodes})


async def test_a_node_is_routed_once_a_gateway_reports_serving_its_version() -> None:
    board = RouteBoard()
    served = board.version  # the gateway serves the board's first table
    serve(board, served)
    assert not board.routed("default", "web")  # not in the table at all

    await board.publish(table("web"))
    assert board.version == served + 1
    assert not board.routed("default", "web")  # published, the gateway not told yet

    serve(board, served)  # a report still at the old version
    assert not board.routed("default", "web")
    serve(board, served + 1)  # the gateway applied it
    assert board.routed("default", "web")


async def test_a_node_stays_routed_while_its_route_changes_and_not_once_it_is_gone() -> None:
    board = RouteBoard()
    await board.publish(table("web"))
    serve(board, board.version)
    await board.publish(table("web", "api"))
    assert board.routed("default", "web")  # present in the table the gateway has
    assert not board.routed("default", "api")

    await board.publish(table("api"))
    serve(board, board.version)
    assert not board.routed("default", "web")
    await board.publish(table("api", "web"))  # back again: a new route to deliver
    assert not board.routed("default", "web")
    assert board.routed("default", "api")


async def test_a_version_from_before_a_restart_does_not_count_as_served() -> None:
    board = RouteBoard()
    await board.publish(table("web"))
    serve(board, board.version + 1000)  # a gateway that served another board's newer table
    assert not board.routed("default", "web")
    serve(board, board.version, gateway="gw-other")  # one current, the other still ahead
    assert not board.routed("default", "web")


async def test_without_a_reporting_gateway_nothing_is_routed() -> None:
    board = RouteBoard()
    await board.publish(table("web"))
    await board.wait_newer(board.version, wait_s=0)  # a poll alone says nothing of serving
    assert not board.routed("default", "web")


async def test_an_unchanged_table_makes_no_version_and_a_change_wakes_a_long_poll() -> None:
    board = RouteBoard()
    await board.publish(table("web"))
    version = board.version
    await board.publish(table("web"))
    assert board.version == version

    poll = asyncio.create_task(board.wait_newer(version, wait_s=5))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await board.publish(table("web", "api"))
    newer = await asyncio.wait_for(poll, 1)
    assert newer.version == version + 1
    assert set(newer.nodes) == {"default/web", "default/api"}


async def test_with_several_gateway_workers_a_node_is_routed_once_every_worker_has_it() -> None:
    board = RouteBoard()
    await board.publish(table("web"))
    serve(board, board.version, worker=0, workers=2)
    serve(board, board.version - 1, worker=1, workers=2)
    assert not board.routed("default", "web")  # worker 1 still serves the older table
    serve(board, board.version, worker=1, workers=2)
    assert board.routed("default", "web")

    serve(board, board.version - 1, worker=1, workers=2)
    serve(board, board.version, worker=0, workers=1)  # one worker now: 1 is gone
    assert board.routed("default", "web")


async def test_with_several_gateways_a_node_is_routed_once_every_one_serves_it() -> None:
    board = RouteBoard()
    serve(board, board.version, gateway="gw-a")
    serve(board, board.version, gateway="gw-b")
    await board.publish(table("web"))
    serve(board, board.version, gateway="gw-a")
    assert not board.routed("default", "web")  # gw-b has not applied it
    serve(board, board.version, gateway="gw-b")
    assert board.routed("default", "web")


async def test_a_gateway_gets_only_the_routes_that_changed_and_applies_them() -> None:
    """Asked with the version it serves, the board answers the changes since; the
    gateway's sync applies them on its table and gets the board's table, whole."""
    board = RouteBoard()
    sync = RouteSync(lambda _: None, control_url=None, token_file=None, routes_file=None)
    await board.publish(table(*(f"n{i}" for i in range(50))))
    sync.current = sync._table_of(
        (await board.wait_changes(-1, wait_s=0)).model_dump_json().encode()
    )  # a first poll: the whole table
    assert sync.current == board.table
    served = board.version
    new = table(*(f"n{i}" for i in range(1, 50)), "fresh")
    changed = NodeRoute(project="default", node="n7", timeout_s=3.0)
    await board.publish(new.model_copy(update={"nodes": {**new.nodes, "default/n7": changed}}))

    changes = await board.wait_changes(served, wait_s=0)
    assert isinstance(changes, RouteChanges)
    assert sorted(changes.nodes) == ["default/fresh", "default/n7"]
    assert changes.removed == ("default/n0",)
    sync.current = sync._table_of(changes.model_dump_json().encode())
    assert sync.current == board.table

    nothing = await board.wait_changes(board.version, wait_s=0.01)  # nothing changed since
    assert isinstance(nothing, RouteChanges) and not nothing.nodes and not nothing.removed
    assert sync._table_of(nothing.model_dump_json().encode()) is sync.current
