"""A bounded async client sending requests at a steady rate, to check that nothing fails
while pier re-points an alias underneath it.

Requests go out on a fixed schedule (``rate`` per second) over at most ``connections``
keep-alive connections; a request that would exceed that bound waits for one to free up
(so a slow pier lowers the rate instead of piling up requests). Each answer is kept
with the time its request was sent, so a test can look at the answers sent after a
moment (an alias switch) only.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import httpx

from tests.conftest import PierProcess


@dataclass(frozen=True, slots=True)
class Answer:
    sent_at: float
    """time.monotonic() when the request was sent."""
    status: int | None
    """None: no HTTP answer (a connection error or a timeout)."""
    instance: str | None
    """The x-pier-instance header: which instance answered."""
    node: str | None
    """The x-pier-node header, once the gateway sends it."""
    error: str | None = None


@dataclass
class PacedLoad:
    pier: PierProcess
    path: str
    rate: float = 200.0
    connections: int = 8
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> PacedLoad:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def run_for(self, seconds: float) -> None:
        """Keep the load going (from the test's thread) for ``seconds`` more."""
        time.sleep(seconds)

    def failures(self) -> list[Answer]:
        return [a for a in self.answers if a.status is None or not 200 <= a.status < 300]

    def sent_after(self, moment: float) -> list[Answer]:
        return [a for a in self.answers if a.sent_at > moment]

    async def _run(self) -> None:
        limits = httpx.Limits(
            max_connections=self.connections, max_keepalive_connections=self.connections
        )
        headers = {"Authorization": f"Bearer {self.pier.token}"}
        async with httpx.AsyncClient(
            base_url=self.pier.gateway_url, headers=headers, limits=limits, timeout=30,
            trust_env=False,
        ) as client:  # fmt: skip
            bound = asyncio.Semaphore(self.connections)
            pending: set[asyncio.Task[None]] = set()
            start = time.monotonic()
            sent = 0
            while not self._stop.is_set():
                due = start + sent / self.rate
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                await bound.acquire()
                task = asyncio.create_task(self._one(client, bound))
                pending.add(task)
                task.add_done_callback(pending.discard)
                sent += 1
            await asyncio.gather(*pending)

    async def _one(self, client: httpx.AsyncClient, bound: asyncio.Semaphore) -> None:
        sent_at = time.monotonic()
        try:
            response = await client.get(self.path)
        except httpx.HTTPError as exc:
            self.answers.append(Answer(sent_at, None, None, None, f"{type(exc).__name__}: {exc}"))
        else:
            headers = response.headers
            self.answers.append(
                Answer(
                    sent_at, response.status_code, headers.get("x-pier-instance"),
                    headers.get("x-pier-node"),
                    None if response.is_success else response.text[:200],
                )
            )  # fmt: skip
        finally:
            bound.release()
