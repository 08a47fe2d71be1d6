"""The sampler reads a model instance's statistics only when the gateway sent it requests
since its last read: at idle, reading every instance's /v2/models/stats every sample made
the control plane's cost grow with the number of model nodes.

The model server here is a stand-in (an asyncio HTTP server answering the statistics
body and counting its reads); the sampler, the store and the gateway view are pier's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pier.controller.gateway_registry import WorkerStatus
from pier.controller.gateway_view import GatewayView
from pier.controller.sampling import Sampler
from pier.domain.instance_status import InstanceStatus
from pier.domain.records import InstanceRecord
from pier.domain.specs import parse_node_spec
from pier.observability.series import SeriesStore
from pier.store.repository import Repository, utcnow


class StatsServer:
    """Answers GET /v2/models/stats with ``inferences`` so far; counts the reads."""

    def __init__(self) -> None:
        self.inferences = 0
        self.reads = 0
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline() not in (b"\r\n", b""):
                pass
            self.reads += 1
            body = json.dumps({"model_stats": [{"inference_count": self.inferences}]}).encode()
            head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()


class Gateway:
    """One gateway worker whose figures say how many requests the instance answered."""

    def __init__(self) -> None:
        self.answered = 0
        self.shown = True
        """Whether its figures show the instance (a gateway shows none that it sent no
        request)."""

    async def statuses(self) -> list[WorkerStatus] | None:
        return []

    async def metrics(self) -> list[tuple[str, str]] | None:
        labels = 'project="default",node="iris",instance="iris-1",outcome="answered"'
        text = "# TYPE pier_gateway_instance_requests_total counter\n"
        if self.shown:
            text += f"pier_gateway_instance_requests_total{{{labels}}} {self.answered}\n"
        return [("gw/0", text)]


@pytest.fixture
async def server() -> AsyncIterator[StatsServer]:
    stats = StatsServer()
    listening = await asyncio.start_server(stats.handle, "127.0.0.1", 0)
    stats.url = f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}"
    async with listening:
        yield stats
    await listening.wait_closed()


@pytest.mark.parametrize("shown", [True, False], ids=["shown", "never-shown"])
async def test_an_instance_the_gateway_sent_nothing_is_not_read_again(
    repo: Repository, server: StatsServer, tmp_path: Path, shown: bool
) -> None:
    """``never-shown``: the gateway's figures do not show the instance at all until it
    sends it a request (as a real gateway's do)."""
    repo.add_node("default", "iris", parse_node_spec({"model": "iris"}), runtime="local")
    now = utcnow()
    repo.upsert_instance(InstanceRecord(
        id="iris-1", project="default", node="iris", status=InstanceStatus.HEALTHY, since=now,
        endpoint=server.url, restarts=0, last_error=None, generation=1, runtime="local",
        limits_applied=(), limits_not_applied=(), created_at=now,
    ))  # fmt: skip
    gateway = Gateway()
    gateway.shown = shown
    clock = iter(range(1000, 2000, 5))
    store = SeriesStore(tmp_path / "series.db", retention_s=(3600, 86400, 604800), max_series=100)
    sampler = Sampler(
        store, repo, GatewayView(gateway), {}, interval_s=5, model_stats=True,
        clock=lambda: float(next(clock)),
    )  # fmt: skip
    await sampler.sample()
    assert server.reads == 1  # the first read
    for _ in range(3):
        await sampler.sample()
    assert server.reads == 1  # nothing sent to it: its statistics cannot have moved

    gateway.shown, gateway.answered, server.inferences = True, 4, 4
    await sampler.sample()
    assert server.reads == 2  # the gateway sent it requests: read again
    store.close()
