"""Two processes' leaderships on one store (real controllers, a real SQLite store, clocks
passed in): one leads, the other follows; the leader paused past its lease has its
controller's store calls refused before it even learns of it, the follower takes the
next term, and the old leader then steps down. On SQLite a second `pier up` on the same
data dir is refused, naming what it needs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pier.controller.adoption import Adoption
from pier.controller.leadership import Duties, Leadership, LeaseLost
from pier.controller.loop import Controller
from pier.controller.routes import RouteBoard
from pier.domain.errors import RuntimeUnavailable
from pier.runtimes.registry import RuntimeRegistry
from pier.server import lock_data_dir
from pier.settings import ControllerSettings, LeaderSettings, Settings
from pier.store import Repository
from pier.store.leases import Leases

LEASE = LeaderSettings(lease_s=600.0, renew_s=300.0)
"""Long: the loops' own rounds never come during a test; the test makes each round."""


@dataclass
class Clocks:
    seconds: float = 0.0

    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.seconds)

    def monotonic(self) -> float:
        return self.seconds


@pytest.fixture
def engine(store_engine: Engine) -> Engine:
    Repository(store_engine).ensure_default_project()
    return store_engine


class SlowStart(Controller):
    """A controller whose adoption takes until the test says (a large installation)."""

    released: asyncio.Event | None = None
    entered: asyncio.Event | None = None
    """Set when an adoption begins."""

    async def start(self) -> Adoption:
        if self.entered is not None:
            self.entered.set()
        if self.released is not None:
            await self.released.wait()
        return await super().start()


def leadership(
    engine: Engine,
    holder: str,
    clocks: Clocks,
    said: list[str],
    settings: LeaderSettings = LEASE,
    released: asyncio.Event | None = None,
    entered: asyncio.Event | None = None,
) -> Leadership:
    repo = Repository(engine)

    def make_controller(fence: Callable[[], None]) -> Controller:
        controller = SlowStart(
            repo, RuntimeRegistry({}, retry_base_s=1.0, retry_max_s=1.0),
            settings=ControllerSettings(), models_dir=Path("/nonexistent"), board=RouteBoard(),
            fence=fence,
        )  # fmt: skip
        controller.released = released
        controller.entered = entered
        return controller

    return Leadership(
        Leases(engine), Duties(make_controller), holder=holder,
        settings=settings, say=said.append, now=clocks.now, monotonic=clocks.monotonic,
    )  # fmt: skip


async def test_a_paused_leader_is_fenced_and_steps_down_for_the_next_term(
    engine: Engine,
) -> None:
    clocks, said_a, said_b = Clocks(), list[str](), list[str]()
    a = leadership(engine, "a", clocks, said_a)
    b = leadership(engine, "b", clocks, said_b)
    try:
        assert await a.begin() is not None and a.term == 1
        assert await b.begin() is None and b.term is None
        assert b.figures().role == "follower" and (b.figures().leader, b.figures().term) == (
            "a", 1)  # fmt: skip
        controller = a.controller
        assert controller is not None
        await controller.tick()  # its store calls pass while the lease lasts

        clocks.seconds += LEASE.lease_s + 1  # a paused past its lease, not yet told
        with pytest.raises(LeaseLost):
            await controller.tick()

        assert await b.check() is not None
        assert b.term == 2 and b.figures().role == "leader"
        assert said_b[-1].startswith("pier: became leader (term 2)")
        await a.check()
        assert a.term is None and a.controller is None
        assert (a.figures().role, a.figures().leader, a.figures().term) == ("follower", "b", 2)
        assert said_a[-1] == "pier: no longer leader; following"
    finally:
        await a.end(stop_instances=False)
        await b.end(stop_instances=False)


async def test_the_lease_is_renewed_while_the_new_leader_adopts(engine: Engine) -> None:
    """Adoption may outlast a lease: the leader keeps it meanwhile, no other takes it."""
    clocks, released, entered = Clocks(), asyncio.Event(), asyncio.Event()
    quick = LeaderSettings(lease_s=6.0, renew_s=0.02)
    a = leadership(engine, "a", clocks, [], quick, released, entered)
    b = leadership(engine, "b", clocks, [], quick)
    leases = Leases(engine)
    starting = asyncio.create_task(a.begin())
    try:
        await asyncio.wait_for(entered.wait(), 30)  # the lease taken at 0 s, adopting
        clocks.seconds = 5.0
        for _ in range(500):
            lease = leases.current()
            if lease is not None and lease.expires_at == clocks.now() + timedelta(seconds=6):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the lease was not renewed during the adoption")
        clocks.seconds = 10.0  # past the first lease, within the renewed one
        assert await b.check() is None and b.term is None
        released.set()
        assert await starting is not None and a.term == 1
    finally:
        released.set()
        await starting
        await a.end(stop_instances=False)
        await b.end(stop_instances=False)


def test_a_second_pier_up_on_a_sqlite_data_dir_is_refused_naming_postgresql(
    tmp_path: Path,
) -> None:
    first = lock_data_dir(Settings(data_dir=tmp_path, port=18080))
    try:
        with pytest.raises(RuntimeUnavailable, match="PostgreSQL store shared by both"):
            lock_data_dir(Settings(data_dir=tmp_path, port=18081))
        shared = "postgresql+psycopg://pier@/pier"
        on_a_server = [
            lock_data_dir(Settings(data_dir=tmp_path, port=p, database_url=shared))
            for p in (18080, 18081)
        ]  # one each: the data dir is shared, each process has its own dir in it
        with pytest.raises(RuntimeUnavailable, match="API port 18081"):
            lock_data_dir(Settings(data_dir=tmp_path, port=18081, database_url=shared))
        for handle in on_a_server:
            handle.close()
    finally:
        first.close()
