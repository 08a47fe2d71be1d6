"""Two `pier up` on one PostgreSQL store and one data dir (the local runtime's instance
state is in it, so either can adopt the other's instances), started at once. The leader
runs the node; writes made through the follower's API go to the store, where the
leader's controller acts on them. Paused (SIGSTOP) past its lease, the leader is
replaced by the follower, which adopts both instances (none is made again) while its
API answers and its gateway serves the node all along; resumed, the old leader steps
down (its controller's store calls are refused from the moment its lease ran out by its
own clock, as tests/controller/test_leadership.py shows). Then the new leader is killed
(SIGKILL): the old one takes over again in the same way. (One pair of `pier up` for
both: each start costs more than a takeover.)"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import IrisModel, PierProcess, _stop_and_clean, free_port
from tests.e2e.load import Load
from tests.e2e.loop_ticks import wait_for_ticks
from tests.e2e.test_model_node_end_to_end import push_and_create
from tests.e2e.test_postgres_store import START_S, stored_instances

TAKEOVER_WAIT_S = 30.0
"""A bound for the wait only: the lease runs out 6 s after the last renewal, and the
follower asks every 2 s."""
LOAD_CLIENTS = 2
MODEL_PATH = "/default/nodes/iris/v2/models/iris"
"""What the load asks the survivor's gateway, over and over, during a takeover: the
model's metadata, answered by an instance."""
READ_LIMIT_S = 15.0
"""How long one read of the standby's API may take: it is answered while the controller
starts beside it, slowly on a loaded machine."""


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
                    r = api.get("/api/v1/projects/default/nodes/iris", timeout=READ_LIMIT_S)
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
def pair(tmp_path: Path, postgres_url: str) -> Iterator[tuple[PierProcess, PierProcess]]:
    """Two `pier up` on one PostgreSQL store and one new data dir, started at once (they
    make the data dir's files and migrate the store one after the other): the one that
    leads, then the one that follows."""
    both = [
        PierProcess(tmp_path / "data", free_port(), free_port(),
                    extra_args=["--database-url", postgres_url])
        for _ in range(2)
    ]  # fmt: skip
    for n, pier in enumerate(both):
        pier.log_path = tmp_path / f"pier-up-{n}.log"
    try:
        with ThreadPoolExecutor(2) as pool:
            for started in [pool.submit(pier.start, START_S) for pier in both]:
                started.result()
        roles = [controller_of(pier)["role"] for pier in both]
        assert sorted(roles) == ["follower", "leader"]
        yield (both[0], both[1]) if roles[0] == "leader" else (both[1], both[0])
    finally:
        for pier in both:
            _stop_and_clean(pier)


def take_over(survivor: PierProcess, leader: PierProcess, stop: Callable[[], None]) -> None:
    """Stop ``leader`` by ``stop``; ``survivor`` must become leader, with the next term,
        adopt the node's instances as they were and serve it, its API answering all along and
    its gateway serving the node without a failed request."""
    term = controller_of(leader)["term"]
    before = sorted(i["id"] for i in survivor.instances("iris"))
    pids = sorted(survivor.instance_pids())
    said = survivor.output().count("became leader")
    with ApiWatch(survivor) as watch, Load(survivor, LOAD_CLIENTS, MODEL_PATH) as load:
        stop()
        stopped_at = time.monotonic()
        survivor.wait_for(lambda: survivor.output().count("became leader") > said,
                          timeout_s=TAKEOVER_WAIT_S, what="the standby to take over")  # fmt: skip
        took_s = time.monotonic() - stopped_at
        survivor.wait_for(lambda: survivor.serving("iris"), what="iris served by the standby")
    print(f"took over {took_s:.1f} s after the stop; {watch.answers} API reads and "
          f"{len(load.statuses)} gateway requests")  # fmt: skip
    assert watch.failures == [] and watch.answers > 0
    failed = [status for status in load.statuses if status != 200]
    assert load.statuses and not failed, f"of {len(load.statuses)}: {Counter(failed)} failed"
    assert "adopted 2 instances of 1 node, removed 0" in survivor.output().split(
        "became leader")[-1]  # fmt: skip
    now = controller_of(survivor)
    assert now["role"] == "leader" and now["term"] == term + 1
    wait_for_ticks(survivor, "--model", "iris", ticks=1)  # a whole tick: it made no instance
    assert sorted(i["id"] for i in survivor.instances("iris")) == before
    assert sorted(survivor.instance_pids()) == pids


def test_the_standby_takes_over_from_a_paused_then_from_a_killed_leader(
    pair: tuple[PierProcess, PierProcess], postgres_url: str, iris_onnx: IrisModel
) -> None:
    first, second = pair
    assert "follower" in second.output() and second.token == first.token
    push_and_create(first, iris_onnx)
    leading, following = controller_of(first), controller_of(second)
    assert (following["leader"], following["term"]) == (leading["leader"], leading["term"])
    assert second.node("iris")["status"] == "Healthy" and len(second.instances("iris")) == 2
    # only the controller removes a deleted node: the leader's, the follower runs none
    wait_for_ticks(second, "--model", "iris", ticks=1)
    paused = first.proc
    assert paused is not None

    take_over(second, first, lambda: paused.send_signal(signal.SIGSTOP))
    paused.send_signal(signal.SIGCONT)
    first.wait_for(lambda: "no longer leader" in first.output(), timeout_s=TAKEOVER_WAIT_S,
                   what="the paused leader to step down")  # fmt: skip
    assert controller_of(first)["role"] == "follower"

    take_over(first, second, lambda: second.stop(signal.SIGKILL))
    assert stored_instances(postgres_url) == 2
