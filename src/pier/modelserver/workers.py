"""The inference pool: threads that run a model off the event loop, with a bound.

Why threads: the event loop must keep answering ``/v2/health/live`` and ``/ready``
(and other connections) while a model computes, and a slow model's requests should
overlap. onnxruntime, scikit-learn's numpy kernels and a Python model that waits on
I/O or sleeps all release the GIL, so threads overlap where it matters, share the one
loaded model (no copy per process) and hand a request over in tens of microseconds.
A pure-Python model that holds the GIL still lets the loop in every few milliseconds
(the interpreter's switch interval), so liveness is answered while it runs.

The pool is sized by the node's configuration (its vCPUs, ``--workers``). It holds at
most ``queue_limit`` requests (running, waiting for a thread or for a batch): one
more is refused at once with 503 :class:`Overloaded`, so a flood of requests costs
memory for a bounded number of bodies and never takes the instance down. The count is
kept on the event loop's thread only (``admit`` and the futures' done callbacks run
there).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

from pier.modelserver.v2 import V2Error

T = TypeVar("T")

DEFAULT_QUEUE_LIMIT: Final = 256


def default_workers() -> int:
    """The CPUs this process may run on (its affinity mask, set from the configuration)."""
    return len(os.sched_getaffinity(0))


class Overloaded(V2Error):
    status = 503

    def __init__(self, name: str, limit: int) -> None:
        super().__init__(
            f"model {name!r} already holds {limit} requests (--max-queue, "
            "PIER_CONTROLLER__MODEL_QUEUE_LIMIT); try again later"
        )


class InferencePool:
    """A thread pool for one model, holding at most ``queue_limit`` requests."""

    def __init__(self, name: str, *, workers: int, queue_limit: int) -> None:
        if workers < 1 or queue_limit < 1:
            raise ValueError("workers and queue_limit must be at least 1")
        self.name = name
        self.workers = workers
        self.queue_limit = queue_limit
        self.held = 0
        """Requests submitted and not finished yet (running or waiting)."""
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix=f"infer-{name}")

    def admit(self) -> None:
        """Count one more request held; Overloaded when the pool already holds its limit."""
        if self.held >= self.queue_limit:
            raise Overloaded(self.name, self.queue_limit)
        self.held += 1

    def release(self) -> None:
        """One admitted request is answered."""
        self.held -= 1

    def released(self, future: asyncio.Future[Any]) -> None:
        """``release`` as a done callback of the request's future."""
        self.held -= 1

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run ``fn(*args)`` on a worker thread (call on the event loop)."""
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def shutdown(self) -> None:
        """Stop taking work; running calls finish on their threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)
