"""The controller's store calls run off the event loop: while a write waits for a locked
store, the health probes (and the API, on the same loop in `pier up`) go on.

In-process on a real SQLite store whose write lock another connection holds; the runtime
is a fake (tests/controller/fake_runtime.py) whose instances listen on real ports."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.controller.fake_runtime import (
    TCP_HEALTH,
    FakeClock,
    FakeRuntime,
    add_image_node,
    controllers,
    tick_until,
)

from pier.controller.tracked import TrackedInstance
from pier.domain.instance_status import InstanceStatus
from pier.settings import StoreSettings
from pier.store.database import create_store_engine, migrate
from pier.store.repository import Repository

PROBES_WHILE_LOCKED = 5
WAIT_FOR_PROBES_S = 10.0


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    engine = create_store_engine(
        f"sqlite:///{tmp_path / 'pier.db'}", StoreSettings(busy_timeout_s=60)
    )
    migrate(engine)
    repository = Repository(engine)
    repository.ensure_default_project()
    yield repository
    engine.dispose()


def unlock_once_probed(holder: sqlite3.Connection, tracked: TrackedInstance) -> threading.Thread:
    """Roll the lock back once the instance was probed PROBES_WHILE_LOCKED more times (at
    the latest after WAIT_FOR_PROBES_S, so that a stalled loop fails the test instead of
    hanging it); ``thread.probed`` says which it was."""
    checks = tracked.window.checks

    def run() -> None:
        deadline = time.monotonic() + WAIT_FOR_PROBES_S
        while tracked.window.checks < checks + PROBES_WHILE_LOCKED:
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        thread.probed = tracked.window.checks - checks  # type: ignore[attr-defined]
        holder.execute("ROLLBACK")

    thread = threading.Thread(target=run, name="store lock holder")
    return thread


async def test_a_write_waiting_for_a_locked_store_does_not_stall_the_probes(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        runtime = FakeRuntime(serve=True)
        add_image_node(repo, health=TCP_HEALTH)
        controller = make(runtime, clock=FakeClock())
        healthy = [InstanceStatus.HEALTHY]
        await tick_until(
            controller, lambda: [r.status for r in repo.list_instances("default")] == healthy
        )
        (tracked,) = controller._instances.values()
        node = repo.get_node("default", "web")
        repo.set_node_state(  # not what the controller thinks: its next tick writes it
            "default", "web", reached_minimum=node.reached_minimum, message="stale",
            crash_looping=False, target_instances=node.target_instances,
        )  # fmt: skip

        holder = sqlite3.connect(tmp_path / "pier.db", isolation_level=None,
                                 check_same_thread=False)  # fmt: skip
        try:
            holder.execute("BEGIN EXCLUSIVE")  # every write of the next tick waits
            unlocker = unlock_once_probed(holder, tracked)
            unlocker.start()
            await controller.tick()  # writes the node's state: waits for the lock
            await asyncio.to_thread(unlocker.join)
        finally:
            holder.close()
        probed: int = unlocker.probed  # type: ignore[attr-defined]
        assert probed >= PROBES_WHILE_LOCKED, f"{probed} probes while the store was locked"
        await tick_until(controller, lambda: repo.get_node("default", "web").message is None)
