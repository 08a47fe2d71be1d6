"""The controller's store operations, run off the event loop in one thread of their own.

A store call blocks (SQLite waits up to its busy timeout for a lock; a database server
answers over the network). Run on the event loop, one slow write would stall every
health probe, every drain and the API served by the same loop. Here each call runs in
one worker thread, one at a time, in the order the controller asked for them: the
writes of a node keep their order, as they had on the loop, and SQLite's single writer
is never contended by the controller itself.

A fence, when given, is called before each call, in the store's thread: it raises when
this process no longer leads (pier.controller.leadership), so that a controller paused
past its lease writes nothing once it wakes up.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")


class StoreThread:
    def __init__(self, fence: Callable[[], None] | None = None) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pier-store")
        self._fence = fence

    async def run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(*args, **kwargs)`` in the store's thread, after the calls asked for before
        (not at all if the fence raises)."""
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs)
        return await loop.run_in_executor(self._executor, self._fenced, call)

    def _fenced(self, call: Callable[[], _T]) -> _T:
        if self._fence is not None:
            self._fence()
        return call()

    def close(self) -> None:
        """No more calls; the one running finishes in its thread."""
        self._executor.shutdown(wait=False)
