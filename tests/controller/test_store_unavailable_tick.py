"""A store that takes no writes fails the controller's ticks without stopping the loop,
is logged once (not once per tick), and the loop catches up once the store is back."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

from structlog.testing import capture_logs

from pier.controller.loop import Controller
from pier.controller.routes import RouteBoard
from pier.domain.specs import parse_node_spec
from pier.runtimes.registry import RuntimeRegistry
from pier.settings import ControllerSettings, StoreSettings
from pier.store import Repository, create_store_engine, migrate


async def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_locked_store_fails_ticks_logged_once_and_the_loop_recovers(
    tmp_path: Path,
) -> None:
    db = tmp_path / "pier.db"
    engine = create_store_engine(f"sqlite:///{db}", StoreSettings(busy_timeout_s=0.05))
    migrate(engine)
    repo = Repository(engine)
    repo.ensure_default_project()
    repo.add_node("default", "gone", parse_node_spec({"model": "iris"}), runtime="local")
    repo.mark_node_deleting("default", "gone")  # the next tick removes it: a write
    controller = Controller(
        repo, RuntimeRegistry({}, retry_base_s=1.0, retry_max_s=1.0),
        settings=ControllerSettings(tick_s=0.05), models_dir=tmp_path,
        board=RouteBoard(),
    )  # fmt: skip
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    with capture_logs() as logs:
        await controller.start()
        try:
            await wait_until(lambda: controller.tick_failures.failed_ticks >= 5, "failed ticks")
            holder.execute("ROLLBACK")
            await wait_until(lambda: not repo.list_nodes(), "the node removed")
            await wait_until(lambda: not controller.tick_failures.is_failing, "a good tick")
        finally:
            holder.close()
            await controller.stop(stop_instances=True)
            engine.dispose()
    events = [(e["log_level"], e["event"]) for e in logs]
    assert events.count(("warning", "store unavailable; the controller retries every tick")) == 1
    assert events.count(("info", "controller ticks succeed again")) == 1
    assert not [e for e in events if e[0] == "error"], events
