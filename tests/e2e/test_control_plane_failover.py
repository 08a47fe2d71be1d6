"""Two `pier up` on one PostgreSQL store and one data dir (the local runtime's instance
state is in it, so either can adopt the other's instances): the first leads and runs
the node; killed with SIGKILL, the second takes the controller's lease, adopts both
instances (none is made again) and keeps the node Healthy, while its API answers all
along. Writes made through the follower's API go to the store, where the leader's
controller picks them up."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import IrisModel, PierProcess, _stop_and_clean, free_port
from tests.e2e.loop_ticks import wait_for_ticks
from tests.e2e.test_model_node_end_to_end import push_and_create
from tests.e2e.test_postgres_store import START_S, stored_instances

TAKEOVER_WAIT_S = 30.0
"""A bound for the wait only: the lease runs out 6 s after the last renewal, and the
follower asks every 2 s."""


class ApiWatch:
    """Reads the node from one `pier up`'s API, over and over, in a thread: every answer
    must be a 200 with the node, whoever leads."""

    def __init__(self, pier: PierProcess) -> None:
        self._pier = pier
        self.answers = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ApiWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with self._pier.api() as api:
            while not self._stop.is_set():
                try:
                    r = api.get("/api/v1/projects/default/nodes/iris", timeout=5)
                    if r.status_code != 200:
                        self.failures.append(f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.answers += 1
                self._stop.wait(0.1)


def controller_of(pier: PierProcess) -> dict[str, Any]:
    with pier.api() as api:
        figures: dict[str, Any] = api.get("/api/v1/controller").json()
        return figures


@pytest.fixture
def standby(tmp_path: Path) -> Iterator[Callable[[PierProcess], PierProcess]]:
    """A second `pier up` on the first's store and data dir, on ports of its own."""
    made: list[PierProcess] = []

    def make(first: PierProcess) -> PierProcess:
        second = PierProcess(
            first.data_dir, free_port(), free_port(), extra_args=list(first.extra_args)
        )
        second.log_path = tmp_path / "standby-pier-up.log"
        made.append(second)
        second.start(START_S)
        return second

    yield make
    for pier in made:
        _stop_and_clean(pier)


def test_the_standby_takes_over_the_instances_when_the_leader_is_killed(
    pier_factory: Callable[..., PierProcess],
    standby: Callable[[PierProcess], PierProcess],
    postgres_url: str,
    iris_onnx: IrisModel,
) -> None:
    first = pier_factory(args=["--database-url", postgres_url], start=False)
    first.start(START_S)
    push_and_create(first, iris_onnx)
    leading = controller_of(first)
    assert leading["role"] == "leader"
    second = standby(first)
    assert "follower" in second.output()
    following = controller_of(second)
    assert following["role"] == "follower"
    assert (following["leader"], following["term"]) == (leading["leader"], leading["term"])
    assert second.node("iris")["status"] == "Healthy"
    # a write to the follower's API goes to the store, and the leader's tick acts on it:
    # only the controller removes a deleted node (the follower runs none)
    wait_for_ticks(second, "--model", "iris", ticks=1)
    before = sorted(i["id"] for i in second.instances("iris"))
    pids = sorted(first.instance_pids())
    assert len(before) == 2

    with ApiWatch(second) as watch:
        first.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        second.wait_for(lambda: "became leader" in second.output(), timeout_s=TAKEOVER_WAIT_S,
                        what="the standby to take over")  # fmt: skip
        took_s = time.monotonic() - killed_at
        second.wait_for(lambda: second.serving("iris"), what="iris served by the standby")
    print(f"took over {took_s:.1f} s after the kill; {watch.answers} API reads, all served")
    assert watch.failures == [] and watch.answers > 0
    assert "adopted 2 instances of 1 node, removed 0" in second.output()
    now = controller_of(second)
    assert now["role"] == "leader" and now["term"] == leading["term"] + 1
    wait_for_ticks(second, "--model", "iris", ticks=1)  # a whole tick: it made no instance
    assert sorted(i["id"] for i in second.instances("iris")) == before
    assert sorted(second.instance_pids()) == pids
    assert stored_instances(postgres_url) == 2
