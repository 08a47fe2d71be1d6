"""Route updates: from the routes file, or long-polled from the control plane, and kept
when the control plane is away."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from gateway_processes import (
    TOKEN,
    Gateway,
    Upstream,
    free_port,
    node,
    table,
    wait_until,
    write_routes,
)

from pier.domain.routes import RouteTable

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_routes_file_changes_are_picked_up(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    own = gateway_factory(table(node("first", upstreams["a"].endpoint)))
    with own.client() as client:
        assert client.get("/default/nodes/second/x", headers=AUTH).status_code == 404
        write_routes(own.routes_file, table(node("second", upstreams["b"].endpoint), version=2))
        wait_until(lambda: own.routes_version() == 2, what="routes version 2")
        response = client.get("/default/nodes/second/x")
        assert response.status_code == 200
        assert response.json()["instance"] == "b"
        assert client.get("/default/nodes/first/x", headers=AUTH).status_code == 404


def test_unreachable_control_plane_leaves_the_routes_file_in_charge(
    gateway_factory: Callable[..., Gateway], upstreams: dict[str, Upstream]
) -> None:
    own = gateway_factory(
        table(node("kept", upstreams["a"].endpoint), version=7),
        "--control-url",
        f"http://127.0.0.1:{free_port()}",
    )
    with own.client() as client:
        for _ in range(3):
            assert client.get("/default/nodes/kept/x").status_code == 200
    assert own.routes_version() == 7


class FakeControlPlane:
    """Serves ``GET /api/v1/routes?after=&wait_s=`` like the control plane: answers as soon
    as its table's version is past ``after``, else after ``wait_s`` with the same table."""

    def __init__(self) -> None:
        self.table = RouteTable()
        self.port = free_port()
        self.authorizations: list[str | None] = []
        self._loop = asyncio.new_event_loop()
        self._changed: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=5)

    def publish(self, table: RouteTable) -> None:
        def swap() -> None:
            self.table = table
            assert self._changed is not None
            self._changed.set()
            self._changed = asyncio.Event()

        self._loop.call_soon_threadsafe(swap)

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        future.result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self) -> None:
        self._changed = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
                target = head.split(" ", 2)[1]
                headers = dict(
                    (k.strip().lower(), v.strip())
                    for k, _, v in (line.partition(":") for line in head.split("\r\n")[1:])
                    if k
                )
                self.authorizations.append(headers.get("authorization"))
                query = httpx.URL(target).params
                after = int(query.get("after", "0"))
                if self.table.version <= after and self._changed is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._changed.wait(), float(query.get("wait_s", "20"))
                        )
                body = self.table.model_dump_json().encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
def control_plane() -> Iterator[FakeControlPlane]:
    plane = FakeControlPlane()
    plane.start()
    yield plane
    plane.stop()


def test_fake_control_plane_routes_reach_the_gateway_and_the_routes_file(
    gateway_factory: Callable[..., Gateway],
    upstreams: dict[str, Upstream],
    control_plane: FakeControlPlane,
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "admin.token"
    token_file.write_text(TOKEN + "\n")
    control_plane.publish(table(node("one", upstreams["a"].endpoint), version=1))
    own = gateway_factory(
        None,
        "--control-url",
        f"http://127.0.0.1:{control_plane.port}",
        "--token-file",
        str(token_file),
    )
    wait_until(lambda: own.routes_version() == 1, what="routes version 1")
    control_plane.publish(table(node("two", upstreams["b"].endpoint), version=2))
    wait_until(lambda: own.routes_version() == 2, what="routes version 2")
    with own.client() as client:
        assert client.get("/default/nodes/two/x").json()["instance"] == "b"
    persisted = RouteTable.model_validate_json(own.routes_file.read_bytes())
    assert persisted.version == 2
    assert f"Bearer {TOKEN}" in control_plane.authorizations


def test_restarted_gateway_serves_persisted_routes_while_control_plane_is_down(
    gateway_factory: Callable[..., Gateway],
    upstreams: dict[str, Upstream],
    control_plane: FakeControlPlane,
) -> None:
    control_plane.publish(table(node("saved", upstreams["a"].endpoint), version=3))
    first = gateway_factory(None, "--control-url", f"http://127.0.0.1:{control_plane.port}")
    wait_until(lambda: first.routes_version() == 3, what="routes version 3")
    first.process.terminate()
    first.process.wait(timeout=5)
    control_plane.stop()
    second = gateway_factory(
        None,
        "--control-url",
        f"http://127.0.0.1:{control_plane.port}",
        routes_file=first.routes_file,
    )
    with second.client() as client:
        assert client.get("/default/nodes/saved/x").status_code == 200
