"""Instance logs of a node, one instance or all of them merged, optionally followed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from pier.domain.errors import InstanceNotFound
from pier.services.routes import LogSource
from pier.store.repository import Repository

_DONE = object()


async def node_logs(
    repo: Repository,
    source: LogSource,
    project: str,
    node: str,
    *,
    instance: str | None,
    follow: bool,
    tail: int | None,
) -> AsyncIterator[str]:
    """Lines of the node's instances; each prefixed ``[id] `` when several are merged."""
    repo.get_node(project, node)
    ids = [i.id for i in repo.list_instances(project, node)]
    if instance is not None:
        if instance not in ids:
            raise InstanceNotFound(node, instance)
        async for line in source.logs(instance, follow=follow, tail=tail):
            yield line
        return
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=1000)

    async def pump(instance_id: str) -> None:
        try:
            async for line in source.logs(instance_id, follow=follow, tail=tail):
                await queue.put(f"[{instance_id}] {line}")
        except Exception as exc:  # one instance's logs gone must not end the others
            await queue.put(f"[{instance_id}] (logs unavailable: {exc})")
        finally:
            await queue.put(_DONE)

    tasks = [asyncio.create_task(pump(i)) for i in ids]
    try:
        remaining = len(tasks)
        while remaining:
            item = await queue.get()
            if item is _DONE:
                remaining -= 1
            else:
                yield str(item)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
