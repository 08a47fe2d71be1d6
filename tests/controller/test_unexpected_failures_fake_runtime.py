"""A pull, a probe or a removal that raises something unexpected becomes one event on the
node (once per change of the error, never with a secret) and is retried with a backoff:
no node stays Created without a message, no instance stays Deleting.

The controller runs in-process on a real store; the runtime is a fake (a container
engine that fails on cue, tests/controller/fake_runtime.py), implementing the Runtime
protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.controller.fake_runtime import PINNED, FakeRuntime, events, tick_until

from pier.controller.loop import Controller
from pier.controller.routes import RouteBoard
from pier.domain.names import InstanceId
from pier.domain.specs import parse_node_spec
from pier.runtimes.base import Runtime
from pier.settings import ControllerSettings
from pier.store.repository import Repository

PASSWORD = "hunter2-registry-password"
SECRET_ENV = "s3cret-env-value"


@pytest.fixture
def repo(repo: Repository) -> Repository:
    repo.put_secret("default", "regcred", {"username": "me", "password": PASSWORD})
    return repo


@pytest.fixture
async def run(
    repo: Repository, tmp_path: Path
) -> AsyncIterator[Callable[[FakeRuntime], Controller]]:
    controllers: list[Controller] = []

    def make(engine: FakeRuntime) -> Controller:
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


def no_secret_in(repo: Repository) -> None:
    for event in repo.list_events("default", "web", limit=1000):
        assert PASSWORD not in event.message and SECRET_ENV not in event.message


async def test_a_pull_that_raises_is_an_event_then_retried_with_backoff(
    repo: Repository, run: Callable[[FakeRuntime], Controller]
) -> None:
    engine = FakeRuntime(
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
    # (It may say "pulling" first: the retry can start before a tick writes the failure.)
    failed = "pulling 127.0.0.1:5000/echo:1 failed"
    await tick_until(controller, lambda: failed in (repo.get_node("default", "web").message or ""))

    await tick_until(controller, lambda: len(events(repo, "pull_failed")) == 2)
    pinned = await tick_until(controller, lambda: events(repo, "image_pinned"))
    assert PINNED in pinned[0].message
    assert engine.pulls == 4
    told = [e.message for e in events(repo, "pull_failed")]
    assert "KeyError" in told[0] and "ValueError" in told[1], told
    assert "'password': '***'" in told[1]
    no_secret_in(repo)


async def test_a_probe_that_raises_is_one_event_and_keeps_probing(
    repo: Repository, run: Callable[[FakeRuntime], Controller]
) -> None:
    # The engine reports an endpoint the HTTP client refuses to use: the probe raises.
    engine = FakeRuntime(endpoint="http://127.0.0.1:99999")
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
    repo: Repository, run: Callable[[FakeRuntime], Controller]
) -> None:
    engine = FakeRuntime()
    add_node(repo, pinned=True)
    controller = run(engine)
    await tick_until(controller, lambda: engine.running)

    engine.delete_errors = [RuntimeError(f"engine said no to {SECRET_ENV}")] * 2
    repo.mark_node_deleting("default", "web")
    failed = await tick_until(controller, lambda: events(repo, "delete_failed"))
    assert "RuntimeError: engine said no" in failed[0].message
    assert len(failed) == 1
    await tick_until(controller, lambda: not repo.list_nodes())  # not stuck in Deleting
    assert engine.deletes == 3 and not engine.running
