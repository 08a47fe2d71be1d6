"""A following `pier up` serves the leader's routes: its own gateway (and any `pier
gateway` pointed at it) routes every node while another process runs the controller.

Only the leader's controller builds route tables (from the instances it tracks). While
this process follows, LeaderRoutes long-polls the leader's ``GET /api/v1/routes`` with
the installation's admin token and publishes each table on this process's own board, so
gateways syncing here get the same routes, in versions of this board. When the leader
stops answering (paused, killed), the board keeps the last table: gateways go on
serving it until this process takes over and its own controller publishes.

What stays the leader's: the gateways reporting here are not in the leader's registry,
so the leader does not wait for them before it counts a node routed or an instance
drained (they get each change within one long poll of the leader's gateways).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Final

import httpx
import structlog
from pydantic import ValidationError

from pier.controller.routes import RouteBoard
from pier.domain.routes import RouteTable

log = structlog.get_logger("pier.leadership")

WAIT_S: Final = 25.0
"""How long one long poll of the leader may wait for a newer table."""
RETRY_MIN_S: Final = 0.2
RETRY_MAX_S: Final = 5.0
IDLE_S: Final = 0.5
"""How often to look again whether there is a leader to follow (none known, or this
process leads)."""


def leader_url(holder: str) -> str | None:
    """The API URL in a lease holder's name (``"<hostname> <host>:<port>"``, see
    server.lease_holder); a wildcard host is reached by the hostname. None if the name
    is not of that form."""
    hostname, _, address = holder.partition(" ")
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not hostname:
        return None
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = hostname
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


class LeaderRoutes:
    """Mirrors the leader's route table on ``board`` while ``leader()`` names one."""

    def __init__(
        self,
        board: RouteBoard,
        leader: Callable[[], str | None],
        token_path: Path,
        *,
        wait_s: float = WAIT_S,
    ) -> None:
        """``leader``: the leader's API URL while this process follows one, else None
        (this process leads, or no leader is known)."""
        self._board = board
        self._leader = leader
        self._token_path = token_path
        self._wait_s = wait_s
        self._following: str | None = None
        """The URL of the leader followed now."""
        self._version = -1
        """The version of its table last published here (-1: none yet)."""
        self._failing: str | None = None
        """Why the last poll failed, logged once per change of reason."""

    async def run(self) -> None:
        """Follow whichever process leads, until cancelled."""
        timeout = httpx.Timeout(self._wait_s + 10.0, connect=5.0)
        delay_s = RETRY_MIN_S
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            while True:
                url = self._leader()
                if url != self._following:  # another leader: its versions are its own
                    self._following, self._version = url, -1
                if url is None:
                    await asyncio.sleep(IDLE_S)
                    continue
                try:
                    table = await self._poll(client, url)
                except (httpx.HTTPError, ValidationError, OSError) as exc:
                    self._failed(url, exc)
                    await asyncio.sleep(delay_s)
                    delay_s = min(delay_s * 2, RETRY_MAX_S)
                    continue
                delay_s = RETRY_MIN_S
                if self._failing is not None:
                    log.info("following the leader's routes again", leader=url)
                    self._failing = None
                if self._leader() != url:  # took over (or another leads) meanwhile
                    continue
                if table.version == self._version:
                    await asyncio.sleep(RETRY_MIN_S)  # answered at once with no news
                    continue
                self._version = table.version
                await self._board.publish(table)

    async def _poll(self, client: httpx.AsyncClient, url: str) -> RouteTable:
        token = await asyncio.to_thread(self._token_path.read_text)
        response = await client.get(
            f"{url}/api/v1/routes",
            params={"after": str(self._version), "wait_s": f"{self._wait_s:g}"},
            headers={"Authorization": f"Bearer {token.strip()}"},
        )
        response.raise_for_status()
        return RouteTable.model_validate_json(response.content)

    def _failed(self, url: str, exc: Exception) -> None:
        if isinstance(exc, httpx.HTTPStatusError):
            reason = f"the leader answered {exc.response.status_code}"
        else:
            reason = type(exc).__name__
        if reason != self._failing:
            log.warning("the leader's routes could not be read; gateways here keep the last",
                        leader=url, reason=reason)  # fmt: skip
            self._failing = reason
