"""A gateway worker that crashes refuses no connection: the parent holds the listening
socket, so connections wait in its backlog until the replacement worker accepts them.
Only the requests the killed worker had in flight may fail."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
from collections.abc import Callable

import psutil
import pytest
from gateway_processes import Gateway, Upstream, node, table

REQUEST = b"GET /default/nodes/one/x HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
CLIENTS = 8


async def one_request(port: int) -> str:
    """One request on a connection of its own: 'ok', or the name of what went wrong."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as e:  # refused, or reset while connecting
        return f"connect: {type(e).__name__}"
    try:
        writer.write(REQUEST)
        answer = await reader.read()
        return "ok" if answer.startswith(b"HTTP/1.1 200") else f"status {answer[:12]!r}"
    except OSError as e:
        return type(e).__name__
    finally:
        writer.close()


def serving_workers(gateway: Gateway) -> list[int]:
    """The pids of the worker processes (the gateway's children) that are not dead."""
    try:
        children = psutil.Process(gateway.process.pid).children()
        return [c.pid for c in children if c.status() != psutil.STATUS_ZOMBIE]
    except psutil.NoSuchProcess:
        return []


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_worker_killed_under_load_refuses_no_connection_and_is_replaced(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream], workers: int
) -> None:
    routes = table(node("one", upstreams["a"].endpoint))
    gateway = gateway_factory(routes, "--workers", str(workers))
    outcomes: collections.Counter[str] = collections.Counter()
    after_replacement = 0
    killed: int | None = None
    warmed, replaced = asyncio.Event(), asyncio.Event()

    async def client() -> None:
        nonlocal after_replacement
        while not (replaced.is_set() and after_replacement >= 20) and (
            gateway.process.poll() is None
        ):
            outcome = await one_request(gateway.port)
            outcomes[outcome] += 1
            if outcomes["ok"] >= 20:
                warmed.set()
            if replaced.is_set() and outcome == "ok":
                after_replacement += 1

    async def kill_one_worker() -> None:
        nonlocal killed
        await warmed.wait()
        before = serving_workers(gateway)
        assert len(before) == workers, f"worker processes: {before}"
        killed = before[0]
        os.kill(killed, signal.SIGKILL)
        while not (
            len(now := serving_workers(gateway)) == workers and killed not in now
        ):  # the parent has started a new worker in its place
            if gateway.process.poll() is not None:
                break  # the gateway itself is gone: nothing will replace it
            await asyncio.sleep(0.02)
        replaced.set()

    started = time.monotonic()
    async with asyncio.timeout(30):
        await asyncio.gather(kill_one_worker(), *(client() for _ in range(CLIENTS)))
    not_connected = {outcome for outcome in outcomes if outcome.startswith("connect")}
    assert not not_connected, (outcomes, time.monotonic() - started)
    assert killed is not None and killed != gateway.process.pid
    assert after_replacement >= 20
    assert gateway.process.poll() is None
