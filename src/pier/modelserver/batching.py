"""Dynamic batching: concurrent requests to one model run as one ``predict`` call.

A model whose inputs and outputs all start with a batch dimension computes a batch of
rows for little more than one row costs, when the work per call (framework overhead,
weight reads) dominates. The batcher lives on the event loop; a request joins the
open batch of its *key* (same requested outputs, same inner shapes: what can be
concatenated), and a batch is started on a worker thread when

* a worker is free (at most ``concurrency`` batches run at once: the pool's workers,
  or fewer), and
* it is full (``max_batch_size`` rows; a request that would overflow it starts the
  next batch), or its oldest request has waited ``delay_s``.

With the default delay of 0 nothing waits for company while a worker is idle: at
concurrency 1 a request runs at once, alone; under load, requests pile up while the
workers are busy and the next free worker takes them all. A positive delay trades
that much latency for fuller batches. Splitting the answers back, and running the
requests one by one when the combined call fails, is the ``run`` callable's job
(:meth:`pier.modelserver.dataplane.ServedModel.run_batch`): it returns each request's answer
or exception, and each future gets its own.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, Protocol, TypeVar

from pier.modelserver.workers import InferencePool


class Batchable(Protocol):
    @property
    def rows(self) -> int: ...
    @property
    def batch_key(self) -> Hashable: ...


R = TypeVar("R", bound=Batchable)
A = TypeVar("A")


class _Batch(Generic[R, A]):
    __slots__ = ("deadline", "entries", "key", "rows")

    def __init__(self, key: Hashable, deadline: float) -> None:
        self.key = key
        self.deadline = deadline
        self.rows = 0
        self.entries: list[tuple[R, asyncio.Future[A]]] = []

    def add(self, request: R, future: asyncio.Future[A]) -> None:
        self.entries.append((request, future))
        self.rows += request.rows


class Batcher(Generic[R, A]):
    """Combines requests into batches of at most ``max_batch_size`` rows."""

    def __init__(
        self,
        pool: InferencePool,
        run: Callable[[Sequence[R]], Sequence[A | Exception]],
        *,
        max_batch_size: int,
        delay_s: float,
        concurrency: int | None = None,
    ) -> None:
        self._pool = pool
        self._run = run
        self.max_batch_size = max_batch_size
        self.delay_s = delay_s
        self.concurrency = min(pool.workers, concurrency or pool.workers)
        """Batches that run at once (each on a worker thread)."""
        self._open: dict[Hashable, _Batch[R, A]] = {}
        """Batches still taking requests, oldest first."""
        self._full: deque[_Batch[R, A]] = deque()
        self._running = 0
        self._timer: asyncio.TimerHandle | None = None
        self._dispatch_soon = False

    def submit(self, request: R) -> asyncio.Future[A]:
        """The future answer of ``request``, once its batch has run (call on the loop)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[A] = loop.create_future()
        batch = self._open.get(request.batch_key)
        if batch is not None and batch.rows + request.rows > self.max_batch_size:
            self._close(batch)
            batch = None
        if batch is None:
            batch = _Batch(request.batch_key, loop.time() + self.delay_s)
            self._open[request.batch_key] = batch
        batch.add(request, future)
        if batch.rows >= self.max_batch_size:
            self._close(batch)
        if not self._dispatch_soon:  # requests read in this loop iteration join first
            self._dispatch_soon = True
            loop.call_soon(self._dispatch)
        return future

    def _close(self, batch: _Batch[R, A]) -> None:
        del self._open[batch.key]
        self._full.append(batch)

    def _next(self, now: float) -> _Batch[R, A] | None:
        if self._full:
            return self._full.popleft()
        for batch in self._open.values():
            if batch.deadline <= now:
                del self._open[batch.key]
                return batch
            break  # the oldest open batch has the earliest deadline
        return None

    def _dispatch(self) -> None:
        self._dispatch_soon = False
        loop = asyncio.get_running_loop()
        while self._running < self.concurrency:
            batch = self._next(loop.time())
            if batch is None:
                break
            self._start(batch)
        self._arm_timer(loop)

    def _arm_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._open and self._running < self.concurrency:
            deadline = next(iter(self._open.values())).deadline
            self._timer = loop.call_at(deadline, self._dispatch)

    def _start(self, batch: _Batch[R, A]) -> None:
        self._running += 1
        requests = [request for request, _ in batch.entries]
        done = self._pool.run(self._run, requests)
        done.add_done_callback(lambda result: self._finished(batch, result))

    def _finished(
        self, batch: _Batch[R, A], result: asyncio.Future[Sequence[A | Exception]]
    ) -> None:
        self._running -= 1
        failure: BaseException | None = (
            asyncio.CancelledError() if result.cancelled() else result.exception()
        )
        answers = result.result() if failure is None else [failure] * len(batch.entries)
        for (_, future), answer in zip(batch.entries, answers, strict=True):
            if future.done():
                continue
            if isinstance(answer, BaseException):
                future.set_exception(answer)
            else:
                future.set_result(answer)
        self._dispatch()
