"""The processes the gateway tests start on 127.0.0.1: test instances (``upstream.py``)
and ``python -m pier.gateway``, and route tables for them.

Route tables are written as ``RouteTable`` JSON to a routes file, the way the gateway
persists what it gets from the control plane.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pier.domain.routes import AliasRoute, AliasTarget, NodeRoute, RouteInstance, RouteTable
from pier.domain.specs import Access

HERE = Path(__file__).resolve().parent
TOKEN = "s3cret-token"
TOKEN_SHA256 = hashlib.sha256(TOKEN.encode()).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


GATEWAY_START_S = 30.0
"""How long a test gateway may take to listen; it ends the wait as soon as it does."""


def wait_until(check: Callable[[], bool], timeout_s: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or check}")


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Upstream:
    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self) -> int:
        return int(httpx.get(f"{self.endpoint}/count").json()["count"])


def start_upstream(name: str, log_dir: Path) -> Upstream:
    port = free_port()
    with (log_dir / f"upstream-{name}.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(HERE / "upstream.py"), str(port), name], stdout=log, stderr=log
        )
    return Upstream(name, port, process)


@dataclass
class Gateway:
    port: int
    routes_file: Path
    process: subprocess.Popen[bytes]
    log: Path
    args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0)

    def routes_version(self) -> int:
        return int(httpx.get(f"{self.url}/healthz").json()["routes_version"])


def start_gateway(
    tmp: Path, table: RouteTable | None, *args: str, routes_file: Path | None = None
) -> Gateway:
    """A gateway serving ``table`` from a routes file (re-read when it changes)."""
    port = free_port()
    routes_file = routes_file or tmp / "routes.json"
    if table is not None:
        write_routes(routes_file, table)
    log = tmp / "gateway.log"
    argv = [
        sys.executable,
        "-m",
        "pier.gateway",
        "--port",
        str(port),
        "--routes-file",
        str(routes_file),
        *args,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    gateway = Gateway(port, routes_file, process, log, list(args))
    try:
        wait_until(  # a start takes under a second, but far longer on a loaded machine
            lambda: process.poll() is None and accepts(port),
            timeout_s=GATEWAY_START_S,
            what="gateway to listen",
        )
    except AssertionError:
        stop(process)
        raise AssertionError(f"gateway did not start:\n{log.read_text()}") from None
    return gateway


def write_routes(path: Path, table: RouteTable) -> None:
    """Replace the routes file atomically, as the gateway itself does."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(table.model_dump_json())
    tmp.replace(path)


def node(
    name: str,
    *endpoints: str,
    project: str = "default",
    access: Access = Access.PUBLIC,
    **fields: Any,
) -> NodeRoute:
    instances = tuple(
        RouteInstance(instance_id=f"{name}-{i}", endpoint=e) for i, e in enumerate(endpoints)
    )
    return NodeRoute(project=project, node=name, instances=instances, access=access, **fields)


def alias(
    name: str, *targets: tuple[str, int], access: Access = Access.PUBLIC, project: str = "default"
) -> AliasRoute:
    return AliasRoute(
        project=project,
        alias=name,
        targets=tuple(AliasTarget(node=n, weight=w) for n, w in targets),
        access=access,
    )


def table(*nodes: NodeRoute, aliases: tuple[AliasRoute, ...] = (), version: int = 1) -> RouteTable:
    return RouteTable(
        version=version,
        nodes={f"{n.project}/{n.node}": n for n in nodes},
        aliases={f"{a.project}/{a.alias}": a for a in aliases},
        token_sha256=frozenset({TOKEN_SHA256}),
    )


class FakeControlPlane:
    """Serves ``GET /api/v1/routes?after=&wait_s=`` like the control plane: answers as soon
    as its table's version is past ``after``, else after ``wait_s`` with the same table.
    Anything else is a gateway's report: kept in ``reports`` (target, authorization,
    body) and answered with ``report_answer``."""

    def __init__(self) -> None:
        self.table = RouteTable()
        self.port = free_port()
        self.authorizations: list[str | None] = []
        self.queries: list[dict[str, str]] = []
        self.reports: list[tuple[str, str | None, bytes]] = []
        self.report_answer = b'{"report_interval_s": 60, "heartbeat_s": 60}'
        """Long: a report seen comes of a change, not of a heartbeat."""
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
                if not target.startswith("/api/v1/routes"):  # a gateway's report
                    body = await reader.readexactly(int(headers.get("content-length", "0")))
                    self.reports.append((target, headers.get("authorization"), body))
                    answer, size = self.report_answer, len(self.report_answer)
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\n\r\n%s" % (size, answer))  # fmt: skip
                    continue
                self.authorizations.append(headers.get("authorization"))
                query = httpx.URL(target).params
                self.queries.append(dict(query))
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
