"""Waiting for what a runtime's instances do: phases, log lines, HTTP answers, processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import psutil

from pier.domain.names import InstanceId
from pier.runtimes import Observed, Runtime


async def wait_until(check: Callable[[], Awaitable[bool]], *, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.05)


async def wait_for_phase(runtime: Runtime, instance_id: str, phase: str) -> Observed:
    found: list[Observed] = []

    async def has_phase() -> bool:
        found[:] = [o for o in await runtime.list() if o.instance_id == instance_id]
        return bool(found) and found[0].phase == phase

    await wait_until(has_phase)
    return found[0]


async def read_logs(runtime: Runtime, instance_id: str, *, tail: int | None = None) -> list[str]:
    return [line async for line in runtime.logs(InstanceId(instance_id), follow=False, tail=tail)]


async def wait_for_log(runtime: Runtime, instance_id: str, text: str) -> list[str]:
    lines: list[str] = []

    async def logged() -> bool:
        lines[:] = await read_logs(runtime, instance_id)
        return any(text in line for line in lines)

    await wait_until(logged)
    return lines


async def http_get(url: str, *, timeout_s: float = 10.0) -> httpx.Response:
    """GET, retrying while the server is still starting."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
        while True:
            try:
                return await client.get(url)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)


def is_gone(pid: int, create_time: float) -> bool:
    """No live process with this pid and create time (zombies count as gone)."""
    try:
        process = psutil.Process(pid)
        return bool(
            abs(process.create_time() - create_time) > 0.01
            or process.status() == psutil.STATUS_ZOMBIE
        )
    except psutil.NoSuchProcess:
        return True
