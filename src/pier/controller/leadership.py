"""Which `pier up` runs the controller, when several share one store.

Each `pier up` serves the API; only the one holding the controller's lease in the store
(pier.domain.lease) runs the controller and the sampler, and so owns the instances. The
leader renews its lease every ``renew_s``; the others ask for it as often and take it
once it has run out (``lease_s`` after the leader's last renewal), with the next term:
they adopt every instance the runtimes run, as after a restart, so none is made twice.

Fencing: the leader counts its lease from the moment it asked for it, on its own
monotonic clock, so it always believes it holds the lease for less time than the store
says. Every store call of its controller checks that time first (the controller's fence)
and is refused once it is past, whatever the controller was doing; the renewal loop then
stops the controller. A leader that finds its term taken (it was paused, or the store
was out of reach longer than the lease) stops its controller at once, leaves the
instances to the new leader and follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import structlog

from pier.controller.adoption import Adoption
from pier.controller.leader_routes import leader_url
from pier.controller.loop import Controller
from pier.controller.sampling import Sampler
from pier.domain.errors import StoreUnavailable
from pier.domain.lease import Lease
from pier.domain.traffic import InstanceUsage, Traffic
from pier.domain.views import ControllerFigures
from pier.settings import LeaderSettings
from pier.store.leases import Leases
from pier.store.repository import utcnow

log = structlog.get_logger("pier.leadership")
_T = TypeVar("_T")


async def _in_thread(call: Callable[[], _T]) -> _T:
    """``call`` (a store call) in a thread. Cancelled, this waits for the thread first:
    a store call cut off would leave its connection out while the store closes."""
    future = asyncio.ensure_future(asyncio.to_thread(call))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise


class LeaseLost(StoreUnavailable):
    """A store call of a controller whose lease has run out: refused (never reaches the
    API; the controller stops)."""

    def __init__(self) -> None:
        super().__init__("this `pier up` no longer holds the controller's lease")


@dataclass(frozen=True, slots=True)
class Duties:
    """What the leader runs, made new at each term and stopped when it ends."""

    make_controller: Callable[[Callable[[], None]], Controller]
    """A new controller, given the fence its store calls must pass."""
    make_sampler: Callable[[], Sampler] | None = None
    """A new sampler of the nodes' series, started after the controller."""


class Leadership:
    def __init__(
        self,
        leases: Leases,
        duties: Duties,
        *,
        holder: str,
        settings: LeaderSettings,
        is_sole: bool = False,
        say: Callable[[str], None] = print,
        now: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._leases = leases
        self._duties = duties
        self.holder = holder
        """This process's name in the lease: the same after a restart (see begin)."""
        self._is_sole = is_sole
        """No other process can use the store (SQLite): the lease is always ours."""
        self._restarted = True
        """Until the first ask: a lease under our name is that of a dead predecessor."""
        self._seen: Lease | None = None
        """The lease as last read while following."""
        self._settings = settings
        self._say = say
        self._now = now
        self._monotonic = monotonic
        self._term: int | None = None
        self._held_until = 0.0
        """When this process stops believing it leads (its monotonic clock)."""
        self._controller: Controller | None = None
        self._sampler: Sampler | None = None
        self._last: Controller | None = None
        """The controller of the latest term, for its figures after it ended."""
        self._task: asyncio.Task[None] | None = None
        self._ending = False
        """Set by end(): never lead again."""

    @property
    def term(self) -> int | None:
        """The term this process leads in; None while it follows."""
        return self._term

    @property
    def controller(self) -> Controller | None:
        return self._controller

    def leader_url(self) -> str | None:
        """The API URL of the process that leads, while this one follows it (None while
        this one leads, or before any lease was seen)."""
        lease = self._seen
        if self._term is not None or lease is None or lease.holder == self.holder:
            return None
        return leader_url(lease.holder)

    def fence(self) -> None:
        """Raise LeaseLost unless this process still holds its lease (any thread)."""
        if self._term is None or self._monotonic() >= self._held_until:
            raise LeaseLost()

    async def begin(self) -> Adoption | None:
        """Ask for the lease once (leading at once if it is free, or ours: a lease under
        this `pier up`'s name is its predecessor's, see server.lease_holder), then keep
        renewing or asking; returns what the controller adopted, or None when another
        leads."""
        adopted = await self.check()
        self._task = asyncio.create_task(self._run(), name="leadership")
        return adopted

    async def end(self, *, stop_instances: bool) -> bool:
        """If leading, stop the controller (and with ``stop_instances`` every instance,
        the lease still renewed meanwhile, so their rows are removed), then give the
        lease up so that another takes it at once; stop asking."""
        self._ending = True
        term = self._term
        stopped = await self._step_down(stop_instances=stop_instances)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if term is not None:
            with contextlib.suppress(StoreUnavailable):
                await _in_thread(partial(self._leases.release, self.holder, term, now=self._now()))
        return stopped

    def traffic(self) -> Traffic | None:
        """What this process's sampler read last (for /metrics); None while following."""
        return self._sampler.traffic() if self._sampler is not None else None

    def usage(self) -> Mapping[str, InstanceUsage]:
        """Each instance's CPU and memory as this process's sampler read them last; none
        while following."""
        return self._sampler.usage() if self._sampler is not None else {}

    def figures(self) -> ControllerFigures:
        """The controller's tick times, with who leads (for GET /api/v1/controller)."""
        source = self._controller or self._last
        ticks = (
            source.tick_times.figures()
            if source
            else ControllerFigures(ticks=0, tick_p50_ms=None, tick_p99_ms=None, tick_max_ms=None)
        )
        lease = self._seen
        return ticks.model_copy(update={
            "role": "leader" if self._term is not None else "follower",
            "term": self._term if self._term is not None else (lease.term if lease else None),
            "leader": self.holder if self._term is not None else (lease.holder if lease else None),
        })  # fmt: skip

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._settings.renew_s)
            try:
                await self.check()
            except Exception:  # the loop never dies: the next round tries again
                log.exception("leadership round failed")

    async def check(self) -> Adoption | None:
        """One round: renew the lease or ask for it, then lead or step down as it says;
        returns what the controller adopted if this round made this process the leader."""
        asked_at = self._monotonic()
        try:
            lease = await _in_thread(self._ask)
        except StoreUnavailable as exc:
            if self._term is not None and self._monotonic() >= self._held_until:
                log.error("lease not renewed: the store did not answer", reason=exc.reason)
                await self._step_down(stop_instances=False)
            return None
        if lease is not None and lease.holder == self.holder:
            if self._term is not None and lease.term != self._term:
                await self._step_down(stop_instances=False)  # our old term ran out
            self._held_until = asked_at + self._settings.lease_s
            if self._term is None and not self._ending:
                return await self._lead(lease.term)
            return None
        self._seen = lease
        if self._term is not None:
            log.warning("lease taken by another pier up: stepping down", term=self._term,
                        leader=lease.holder if lease else None)  # fmt: skip
            await self._step_down(stop_instances=False)
        return None

    def _ask(self) -> Lease | None:
        """Renew the term held, else try to take the lease (in a thread of its own)."""
        lease_s, now = self._settings.lease_s, self._now()
        if self._term is not None:
            renewed = self._leases.renew(self.holder, self._term, now=now, lease_s=lease_s)
            if renewed is not None:
                return renewed
        taken = self._leases.acquire(
            self.holder, now=now, lease_s=lease_s, restarted=self._restarted, sole=self._is_sole
        )
        self._restarted = False
        return taken if taken is not None else self._leases.current()

    async def _lead(self, term: int) -> Adoption | None:
        """Start the controller (adopting what runs) and the sampler for ``term``; None
        if the controller could not start (the next round tries again)."""
        self._term = term
        controller = self._controller = self._last = self._duties.make_controller(self.fence)
        try:
            adopted = await self._renewing_while(controller.start())
        except Exception as exc:  # adoption failed (the store, a runtime): lead no more
            log.error("the controller did not start", error_type=type(exc).__name__)
            await self._step_down(stop_instances=False)
            return None
        if self._duties.make_sampler is not None:
            self._sampler = self._duties.make_sampler()
            self._sampler.start()
        log.info("became leader", term=term, adopted=adopted.describe())
        if not self._is_sole:  # on SQLite it always leads: nothing to tell
            self._say(f"pier: became leader (term {term}); {adopted.describe()}")
        return adopted

    async def _renewing_while(self, work: Coroutine[Any, Any, _T]) -> _T:
        """Run ``work`` (adoption, which may outlast a lease), renewing the lease every
        ``renew_s`` meanwhile (the loop that renews it is the one waiting here)."""
        task = asyncio.ensure_future(work)
        while not (await asyncio.wait({task}, timeout=self._settings.renew_s))[0]:
            asked_at, term = self._monotonic(), self._term
            lease_s = self._settings.lease_s
            with contextlib.suppress(StoreUnavailable):
                renewed = await _in_thread(
                    partial(
                        self._leases.renew, self.holder, term or 0, now=self._now(), lease_s=lease_s
                    )
                )
                if renewed is not None:
                    self._held_until = asked_at + lease_s
        return task.result()

    async def _step_down(self, *, stop_instances: bool) -> bool:
        """Stop leading: the controller and the others stop (the instances too only with
        ``stop_instances``, whose rows the controller removes while its lease lasts: a
        stale leader leaves them to the new one)."""
        controller, self._controller = self._controller, None
        if controller is None:
            self._term = None
            return True
        sampler, self._sampler = self._sampler, None
        if sampler is not None:
            await sampler.stop()
        stopped = await controller.stop(stop_instances=stop_instances)
        self._term = None
        if not stop_instances:
            self._say("pier: no longer leader; following")
        return stopped
