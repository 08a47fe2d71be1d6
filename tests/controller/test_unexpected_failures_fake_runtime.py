"""A pull, a probe or a removal that raises something unexpected becomes one event on the
node (once per change of the error, never with a secret) and is retried with a backoff:
no node stays Created without a message, no instance stays Deleting.

The controller runs in-process on a real store; the runtime is a fake (a container
engine that fails on cue), implementing the Runtime protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pier.controller.loop import Controller
from pier.controller.routes import RouteBoard
from pier.domain.names import InstanceId, NodeKey
from pier.domain.records import EventRecord
from pier.domain.specs import parse_node_spec
from pier.runtimes.base import InstanceSpec, InstanceStats, Observed, Runtime
from pier.settings import ControllerSettings
from pier.store.database import create_store_engine, migrate
from pier.store.repository import Repository

PASSWORD = "hunter2-registry-password"
SECRET_ENV = "s3cret-env-value"
PINNED = "127.0.0.1:5000/echo@sha256:" + "a" * 64


@dataclass
class FakeEngine:
    """A docker-like Runtime that raises the errors it is given, in order, then works."""

    name: str = "docker"
    endpoint: str | None = None
    pull_errors: list[Exception] = field(default_factory=list)
    delete_errors: list[Exception] = field(default_factory=list)
    pulls: int = 0
    deletes: int = 0
    running: dict[InstanceId, Observed] = field(default_factory=dict)

    async def resolve_image(
        self,
        ref: str,
        *,
        auth: dict[str, str] | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> str:
        self.pulls += 1
        if self.pull_errors:
            raise self.pull_errors.pop(0)
        return PINNED

    async def create(self, spec: InstanceSpec) -> Observed:
        seen = Observed(spec.instance_id, spec.node, "running", self.endpoint)
        self.running[spec.instance_id] = seen
        return seen

    async def delete(self, instance_id: InstanceId, *, grace_s: float) -> None:
        self.deletes += 1
        if self.delete_errors:
            raise self.delete_errors.pop(0)
        self.running.pop(instance_id, None)

    async def logs(
        self, instance_id: InstanceId, *, follow: bool, tail: int | None = None
    ) -> AsyncIterator[str]:
        for line in ():
            yield line

    async def stats(self, instance_id: InstanceId) -> InstanceStats:
        return InstanceStats()

    async def close(self) -> None:
        pass

    async def list(self, *, node: NodeKey | None = None) -> list[Observed]:
        return [o for o in self.running.values() if node is None or o.node == node]


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'pier.db'}")
    migrate(engine)
    repository = Repository(engine)
    repository.ensure_default_project()
    repository.put_secret("default", "regcred", {"username": "me", "password": PASSWORD})
    yield repository
    engine.dispose()


@pytest.fixture
async def run(
    repo: Repository, tmp_path: Path
) -> AsyncIterator[Callable[[FakeEngine], Controller]]:
    controllers: list[Controller] = []

    def make(engine: FakeEngine) -> Controller:
        assert isinstance(engine, Runtime)
        settings = ControllerSettings(backoff_base_s=0.02, backoff_max_s=0.1, stop_grace_s=0)
        controller = Controller(
            repo, {"docker": engine}, settings=settings, models_dir=tmp_path, board=RouteBoard()
        )
        controllers.append(controller)
        return controller

    yield make
    for controller in controllers:
        await controller.stop(stop_instances=False)


def add_node(repo: Repository, *, pinned: bool, **spec: Any) -> None:
    repo.add_node(
        "default",
        "web",
        parse_node_spec(
            {
                "image": "127.0.0.1:5000/echo:1",
                "port": 8080,
                "registry_secret": "regcred",
                "secret_env": {"TOKEN": SECRET_ENV},
                **spec,
            }
        ),
        runtime="docker",
    )
    if pinned:
        repo.pin_image("default", "web", PINNED)


async def tick_until(controller: Controller, done: Callable[[], Any], *, ticks: int = 2000) -> Any:
    """Tick the controller until ``done()`` holds (background work runs in between)."""
    for _ in range(ticks):
        await controller.tick()
        if value := done():
            return value
        await asyncio.sleep(0.005)
    raise AssertionError("the controller never got there")


def events(repo: Repository, kind: str) -> list[EventRecord]:
    return [e for e in repo.list_events("default", "web", limit=1000) if e.kind == kind]


def no_secret_in(repo: Repository) -> None:
    for event in repo.list_events("default", "web", limit=1000):
        assert PASSWORD not in event.message and SECRET_ENV not in event.message


async def test_a_pull_that_raises_is_an_event_then_retried_with_backoff(
    repo: Repository, run: Callable[[FakeEngine], Controller]
) -> None:
    engine = FakeEngine(
        pull_errors=[
            KeyError("layers"),
            KeyError("layers"),  # the same again: no second event
            ValueError(f"bad auth {{'password': '{PASSWORD}'}}"),
        ]
    )
    add_node(repo, pinned=False)
    controller = run(engine)

    first = await tick_until(controller, lambda: events(repo, "pull_failed"))
    assert "KeyError: 'layers'" in first[0].message
    assert "retrying with a backoff" in first[0].message
    # The node is not left Created without a message while the pull is retried.
    message = await tick_until(controller, lambda: repo.get_node("default", "web").message)
    assert "pulling 127.0.0.1:5000/echo:1 failed" in message

    await tick_until(controller, lambda: len(events(repo, "pull_failed")) == 2)
    pinned = await tick_until(controller, lambda: events(repo, "image_pinned"))
    assert PINNED in pinned[0].message
    assert engine.pulls == 4
    told = [e.message for e in events(repo, "pull_failed")]
    assert "KeyError" in told[0] and "ValueError" in told[1], told
    assert "'password': '***'" in told[1]
    no_secret_in(repo)


async def test_a_probe_that_raises_is_one_event_and_keeps_probing(
    repo: Repository, run: Callable[[FakeEngine], Controller]
) -> None:
    # The engine reports an endpoint the HTTP client refuses to use: the probe raises.
    engine = FakeEngine(endpoint="http://127.0.0.1:99999")
    add_node(repo, pinned=True, health={"path": "/healthz", "interval_s": 0.01})
    controller = run(engine)

    failed = await tick_until(controller, lambda: events(repo, "probe_failed"))
    assert "could not run" in failed[0].message and failed[0].instance is not None
    tracked = controller._instances[InstanceId(failed[0].instance)]
    checks = tracked.window.checks
    await tick_until(controller, lambda: tracked.window.checks >= checks + 3)  # retried
    assert len(events(repo, "probe_failed")) == 1  # told once, not per probe or tick
    assert tracked.window.failures >= 3
    assert tracked.status == "Created"
    no_secret_in(repo)


async def test_a_removal_that_raises_is_retried_until_the_node_is_gone(
    repo: Repository, run: Callable[[FakeEngine], Controller]
) -> None:
    engine = FakeEngine()
    add_node(repo, pinned=True)
    controller = run(engine)
    await tick_until(controller, lambda: engine.running)

    engine.delete_errors = [RuntimeError(f"engine said no to {SECRET_ENV}")] * 2
    repo.update_node("default", "web", deleting=True)
    failed = await tick_until(controller, lambda: events(repo, "delete_failed"))
    assert "RuntimeError: engine said no" in failed[0].message
    assert len(failed) == 1
    await tick_until(controller, lambda: not repo.list_nodes())  # not stuck in Deleting
    assert engine.deletes == 3 and not engine.running
