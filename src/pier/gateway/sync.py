"""Keeping the route table current, without depending on the control plane being up.

Why a long poll: the gateway asks ``GET /api/v1/routes?after=VERSION&wait_s=20`` and the
control plane answers as soon as its table's version moves past ``after``, or after
``wait_s`` with the table it has. A route change (an instance turning Healthy, an alias
re-pointed) reaches the gateway within one round trip, there is one request per change or
per 20 s rather than a poll every second, and it needs nothing beyond plain HTTP (no
websocket or message broker to run). The periodic answer doubles as a heartbeat, and it
repairs a gateway whose version is ahead of a restarted control plane: any table that
differs from the current one is applied, whatever its version number.

Why changes: with hundreds of nodes the table is large, and most changes touch one node.
The gateway asks with ``changes=true``; when the control plane still has the table the
gateway serves (its ``after``), it answers with the routes that changed since
(``RouteChanges``), which the gateway applies on that table; else with the whole table.

Why the routes file: the data plane has to outlive the control plane. Every table is
written to ``--routes-file`` atomically (a temporary file, fsync, rename: a crash leaves
the old file or the new one, never half of one) and loaded at start, so a gateway
restarted while the control plane is down still serves its last known routes.

Why backoff: while the control plane is unreachable the gateway keeps serving the table
it has and retries after 0.2 s, doubling up to 5 s, so a control plane coming back is
picked up within seconds without being hammered by every gateway meanwhile. The token
file is re-read on each attempt, so a token written after the gateway started is used.

Without ``--control-url`` the routes file is the source: its modification time and size
are checked every ``FILE_POLL_S`` and a changed file is loaded (handy for tests and
benchmarks). A file that does not parse is logged and the current table kept.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final

import httpx
import structlog
from pydantic import ValidationError

from pier.domain.routes import RouteChanges, RouteTable

log = structlog.get_logger("pier.gateway.sync")

WAIT_S: Final = 20.0
"""How long the control plane may hold a long poll before answering."""
BACKOFF_MIN_S: Final = 0.2
BACKOFF_MAX_S: Final = 5.0
FILE_POLL_S: Final = 0.2
ROUTES_PATH: Final = "/api/v1/routes"


class RouteSync:
    """Feeds route tables to ``apply``: from the control plane, else from the routes file."""

    def __init__(
        self,
        apply: Callable[[RouteTable], None],
        *,
        control_url: str | None,
        token_file: Path | None,
        routes_file: Path | None,
        wait_s: float = WAIT_S,
        worker: tuple[int, int] | None = None,
    ) -> None:
        """``worker``: (index, count) of this process among the gateway's workers."""
        self._apply = apply
        self._worker = worker
        self._control_url = control_url.rstrip("/") if control_url else None
        self._token_file = token_file
        self._routes_file = routes_file
        self._wait_s = wait_s
        self._file_stamp: tuple[int, int] | None = None
        self.current = RouteTable()

    def load_file(self) -> RouteTable | None:
        """The table in the routes file, or None if there is none (or it does not parse)."""
        path = self._routes_file
        if path is None:
            return None
        try:
            stat = path.stat()
            table = RouteTable.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.warning("routes file unreadable", path=str(path), error=str(e))
            return None
        self._file_stamp = (stat.st_mtime_ns, stat.st_size)
        self.current = table
        return table

    async def run(self) -> None:
        """Follow the control plane (or the routes file) until cancelled."""
        if self._control_url is not None:
            await self._follow_control_plane(self._control_url)
        elif self._routes_file is not None:
            await self._watch_file(self._routes_file)

    async def _follow_control_plane(self, control_url: str) -> None:
        url = control_url + ROUTES_PATH
        timeout = httpx.Timeout(self._wait_s + 10.0, connect=5.0)
        delay_s = BACKOFF_MIN_S
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            while True:
                try:
                    table = await self._poll(client, url)
                except (httpx.HTTPError, ValidationError, ValueError, OSError) as e:
                    log.warning("route sync failed", url=url, error=repr(e), retry_in_s=delay_s)
                    await asyncio.sleep(delay_s)
                    delay_s = min(delay_s * 2, BACKOFF_MAX_S)
                    continue
                delay_s = BACKOFF_MIN_S
                if table == self.current:
                    await asyncio.sleep(BACKOFF_MIN_S)  # no spinning if answered at once
                    continue
                self.current = table
                self._apply(table)
                await self._persist(table)

    async def _poll(self, client: httpx.AsyncClient, url: str) -> RouteTable:
        headers = {}
        token = self._read_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        params = {"after": str(self.current.version), "wait_s": f"{self._wait_s:g}",
                  "changes": "true"}  # fmt: skip
        if self._worker is not None:
            params["worker"], params["workers"] = str(self._worker[0]), str(self._worker[1])
        response = await client.get(url, params=params, headers=headers)
        response.raise_for_status()
        return self._table_of(response.content)

    def _table_of(self, body: bytes) -> RouteTable:
        """The table an answer makes: a whole table, or the changes since the current one
        (applied only on the table they were made from; else the current table stays and
        the next poll asks again)."""
        data = json.loads(body)
        if not isinstance(data, dict) or "base" not in data:
            return RouteTable.model_validate(data)
        changes = RouteChanges.model_validate(data)
        if changes.base != self.current.version:
            log.warning("route changes on another table", base=changes.base,
                        serving=self.current.version)  # fmt: skip
            return self.current
        if changes.version == self.current.version:
            return self.current
        return changes.applied_to(self.current)

    def _read_token(self) -> str | None:
        return read_token(self._token_file)

    async def _persist(self, table: RouteTable) -> None:
        if self._routes_file is None:
            return
        try:
            await asyncio.to_thread(write_atomically, self._routes_file, table)
        except OSError as e:
            log.warning("routes file not written", path=str(self._routes_file), error=str(e))

    async def _watch_file(self, path: Path) -> None:
        while True:
            await asyncio.sleep(FILE_POLL_S)
            try:
                stat = path.stat()
            except OSError:
                continue
            if (stat.st_mtime_ns, stat.st_size) == self._file_stamp:
                continue
            table = self.load_file()
            if table is None:
                self._file_stamp = (stat.st_mtime_ns, stat.st_size)  # retry when it changes
            else:
                self._apply(table)


def read_token(path: Path | None) -> str | None:
    """The bearer token in ``path`` (re-read each time: it may be written later), or None."""
    if path is None:
        return None
    try:
        return path.read_text().strip() or None
    except OSError as e:
        log.warning("token file unreadable", path=str(path), error=e.strerror or type(e).__name__)
        return None


def write_atomically(path: Path, table: RouteTable) -> None:
    """Replace ``path`` with ``table`` as JSON so that readers see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(table.model_dump_json().encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
