"""The runtimes pier has now, and the ones it is waiting for.

Each runtime pier knows comes with a loader. A loader that fails (no Docker engine
answers) leaves its runtime *missing*, with the reason, and the registry tries it again
later: first after ``retry_base_s``, then twice as long each time up to ``retry_max_s``.
A missing runtime is a condition, never a fallback: the nodes bound to it run nowhere
until it loads, and the controller says why (see controller.loop).

The registry is a read-only mapping of the runtimes that loaded. ``retry_due`` hands back
the runtimes that loaded at last *without* adding them, so that the controller can adopt
what already runs there before the loop sees the runtime; ``add`` then makes it visible.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import structlog

from pier.domain.errors import RuntimeUnavailable
from pier.runtimes.base import Runtime

log = structlog.get_logger("pier.runtimes")

Loader = Callable[[], Runtime]
"""Builds a runtime, or raises RuntimeUnavailable saying why it cannot now."""


@dataclass(slots=True)
class _Missing:
    reason: str
    delay_s: float
    next_try: float


class RuntimeRegistry(Mapping[str, Runtime]):
    """The runtimes that loaded, by name; the missing ones are retried with a backoff."""

    def __init__(
        self,
        loaders: Mapping[str, Loader],
        *,
        retry_base_s: float,
        retry_max_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loaders = dict(loaders)
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._clock = clock
        self._loaded: dict[str, Runtime] = {}
        self._missing: dict[str, _Missing] = {}

    @classmethod
    def of(cls, runtimes: Mapping[str, Runtime]) -> RuntimeRegistry:
        """A registry of runtimes already built: none is missing, none is retried."""
        registry = cls({}, retry_base_s=1.0, retry_max_s=1.0)
        registry._loaded.update(runtimes)
        return registry

    def load(self) -> None:
        """Load every runtime once (at start-up); the ones that fail become missing."""
        for name, loader in self._loaders.items():
            try:
                self._loaded[name] = loader()
            except RuntimeUnavailable as exc:
                next_try = self._clock() + self._retry_base_s
                self._missing[name] = _Missing(exc.message, self._retry_base_s, next_try)
                log.info("runtime unavailable", runtime=name, reason=exc.message)

    def __getitem__(self, name: str) -> Runtime:
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded)

    def __len__(self) -> int:
        return len(self._loaded)

    def why_missing(self, name: str) -> str | None:
        """Why runtime ``name`` is not there, or None when it is."""
        if name in self._loaded:
            return None
        missing = self._missing.get(name)
        if missing is None:
            return f"pier has no runtime {name!r} (it knows {', '.join(self._loaders)})"
        return missing.reason

    def next_retry_in(self) -> float | None:
        """Seconds until the next missing runtime is due to be tried; None: none is missing."""
        if not self._missing:
            return None
        return max(0.0, min(m.next_try for m in self._missing.values()) - self._clock())

    async def retry_due(self) -> dict[str, Runtime]:
        """Try the missing runtimes that are due (in a thread: a probe may block); return
        those that loaded now, not yet added (see ``add``)."""
        loaded: dict[str, Runtime] = {}
        for name, missing in list(self._missing.items()):
            if missing.next_try > self._clock():
                continue
            try:
                loaded[name] = await asyncio.to_thread(self._loaders[name])
            except RuntimeUnavailable as exc:
                missing.reason = exc.message
                missing.delay_s = min(missing.delay_s * 2, self._retry_max_s)
                missing.next_try = self._clock() + missing.delay_s
                log.info("runtime still unavailable", runtime=name, retry_in_s=missing.delay_s)
        return loaded

    def add(self, name: str, runtime: Runtime) -> None:
        """Make a runtime that loaded late visible: it is no longer missing."""
        self._missing.pop(name, None)
        self._loaded[name] = runtime
        log.info("runtime available", runtime=name)
