"""The processes the gateway tests start on 127.0.0.1: test instances (``upstream.py``)
and ``python -m pier.gateway``, and route tables for them.

Route tables are written as ``RouteTable`` JSON to a routes file, the way the gateway
persists what it gets from the control plane.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
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
        wait_until(lambda: process.poll() is None and accepts(port), what="gateway to listen")
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
