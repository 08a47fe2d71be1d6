"""Failures say whether trying again can help (pier.domain.retry): a TemporaryError is
tried again after its own delay, capped by the backoff's longest, without counting as a
crash; a PermanentError is told once on the node, which starts and pulls nothing more
until its spec changes; any other exception backs off as before.

In-process on a real store, with the fake runtime and a settable clock; the loop is
stepped with explicit ticks, so "no second try" is checked after ticks that ran."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from structlog.testing import capture_logs
from tests.controller.fake_runtime import (
    FakeClock,
    FakeRuntime,
    add_image_node,
    controllers,
    events,
    tick_until,
)

from pier.controller.loop import Controller
from pier.controller.tick_failures import TickFailures
from pier.domain.specs import parse_node_spec
from pier.runtimes.base import ImagesNotSupported, InstanceNotRunnable, RuntimeLost
from pier.store.repository import Repository

Make = Callable[..., Controller]
SECRET = "s3cret-value"


async def ticks(
    controller: Controller, clock: FakeClock, n: int = 5, step_s: float = 100.0
) -> None:
    """``n`` ticks, the clock moved past any backoff before each."""
    for _ in range(n):
        clock.advance(step_s)
        await controller.tick()


async def test_a_permanent_create_error_is_told_once_and_not_retried_until_the_spec_changes(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        clock = FakeClock()
        refused = InstanceNotRunnable("command", f"cannot start '/nope' ({SECRET})")
        runtime = FakeRuntime(create_errors=[refused])
        add_image_node(repo, secret_env={"TOKEN": SECRET})
        controller = make(runtime, clock=clock)

        failed = await tick_until(controller, lambda: events(repo, "instance_create_failed"))
        assert "not retried until the node's spec changes" in failed[0].message
        await ticks(controller, clock)
        assert runtime.creates == 1 and len(events(repo, "instance_create_failed")) == 1
        node = repo.get_node("default", "web")
        assert node.crash_looping  # failing: `--wait` stops at once
        assert node.message is not None and "cannot start '/nope'" in node.message
        assert SECRET not in node.message and SECRET not in failed[0].message

        spec = node.spec.model_dump(mode="json") | {"env": {"VERSION": "2"}}
        repo.update_node_spec("default", "web", parse_node_spec(spec))
        await tick_until(controller, lambda: runtime.running)
        await controller.tick()
        node = repo.get_node("default", "web")
        assert runtime.creates == 2 and node.message is None and not node.crash_looping


async def test_a_temporary_create_error_is_retried_after_its_own_delay_not_as_a_crash(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        clock = FakeClock()
        lost = [RuntimeLost("lost the engine", delay_s=3.0) for _ in range(4)]
        runtime = FakeRuntime(create_errors=lost)
        add_image_node(repo)
        controller = make(runtime, clock=clock, backoff_base_s=30.0, backoff_max_s=60.0)

        for n in range(1, 5):
            failed = await tick_until(
                controller, lambda n=n: events(repo, "instance_create_failed")[n - 1 :]
            )
            assert "next try in 3 s" in failed[0].message  # its delay, not the backoff's 30
            await controller.tick()
            assert runtime.creates == n  # not before the delay
            clock.advance(3.0)
        await tick_until(controller, lambda: runtime.running)
        assert not repo.get_node("default", "web").crash_looping  # four in a row: no crash loop


async def test_a_temporary_delay_is_capped_by_the_longest_backoff(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        runtime = FakeRuntime(create_errors=[RuntimeLost("lost the engine", delay_s=600.0)])
        add_image_node(repo)
        controller = make(runtime, clock=FakeClock(), backoff_max_s=8.0)
        failed = await tick_until(controller, lambda: events(repo, "instance_create_failed"))
        assert "next try in 8 s" in failed[0].message


async def test_a_permanent_pull_error_is_one_event_and_no_second_pull(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        clock = FakeClock()
        runtime = FakeRuntime(pull_errors=[ImagesNotSupported("this runtime pulls no images")])
        spec = {"image": "127.0.0.1:5000/echo:1", "port": 8080}
        repo.add_node("default", "web", parse_node_spec(spec), runtime="docker")
        controller = make(runtime, clock=clock)

        failed = await tick_until(controller, lambda: events(repo, "image_pull_failed"))
        assert "not retried until the node's spec changes" in failed[0].message
        await ticks(controller, clock)
        assert runtime.pulls == 1 and len(events(repo, "image_pull_failed")) == 1
        node = repo.get_node("default", "web")
        assert node.message is not None and "pulls no images" in node.message

        other = parse_node_spec({**spec, "image": "127.0.0.1:5000/echo:2"})
        repo.update_node_spec("default", "web", other, repin=True)
        await tick_until(controller, lambda: events(repo, "image_pinned"))
        assert runtime.pulls == 2


async def test_an_unknown_create_error_still_backs_off_doubling(
    repo: Repository, tmp_path: Path
) -> None:
    async with controllers(repo, tmp_path) as make:
        runtime = FakeRuntime(create_errors=[OSError("disk on fire")] * 2)
        add_image_node(repo)
        controller = make(
            runtime, clock=(clock := FakeClock()), backoff_base_s=1.0, backoff_max_s=8.0
        )
        first = await tick_until(controller, lambda: events(repo, "instance_create_failed"))
        assert "next try in 1 s" in first[0].message
        clock.advance(1.0)
        told = await tick_until(controller, lambda: events(repo, "instance_create_failed")[1:])
        assert "next try in 2 s" in told[0].message


def test_a_temporary_tick_failure_is_a_warning_without_a_traceback() -> None:
    failures = TickFailures()
    with capture_logs() as logs:
        failures.failed(RuntimeLost("lost the Docker engine", delay_s=2.0))
        failures.failed(KeyError("bug"))
    (temporary, unknown) = logs
    assert temporary["log_level"] == "warning" and "exc_info" not in temporary
    assert temporary["delay_s"] == 2.0 and "lost the Docker engine" in temporary["error"]
    assert unknown["log_level"] == "error" and unknown["exc_info"] is not None
