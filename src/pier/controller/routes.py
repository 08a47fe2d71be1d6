"""The route board: the current RouteTable and a way to wait for a newer one.

The controller publishes after every tick; a new version is made only when the
table's content changed, so gateways long-polling ``wait_newer`` wake up only for
real changes.

Which table each gateway serves comes from the gateway registry (their reports, not
their polls): a node or alias change is served once every live gateway worker serves a
version that has it (``routed``, ``served_alias``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict

from pier.controller.gateway_registry import GatewayRegistry
from pier.domain.routes import AliasRoute, RouteChanges, RouteTable

KEPT_TABLES = 64
"""Recent tables kept to answer a gateway with the changes since the one it serves."""


class RouteBoard:
    def __init__(self, gateways: GatewayRegistry | None = None) -> None:
        """``gateways``: where the gateways report the versions they serve."""
        self.gateways = gateways if gateways is not None else GatewayRegistry()
        # Versions start from the clock so they keep going up across control-plane
        # restarts: a gateway that saw version N before a restart still gets news.
        self._table = RouteTable(version=time.time_ns() // 1_000_000)
        self._changed = asyncio.Condition()
        self._closed = False
        self._since: dict[str, int] = {}
        """The version each node of the table first appeared in, by "project/node"."""
        self._alias_since: dict[str, int] = {}
        """The version each alias of the table last changed in, by "project/alias"."""
        self._recent: OrderedDict[int, RouteTable] = OrderedDict({self._table.version: self._table})
        """The last KEPT_TABLES tables by version, the current one included."""

    @property
    def table(self) -> RouteTable:
        return self._table

    @property
    def version(self) -> int:
        """The version of the current table."""
        return self._table.version

    def routed(self, project: str, node: str) -> bool:
        """Whether the gateway serves a route for the node: a request to it is balanced
        (or waits for an instance) rather than answered 404 by every live gateway worker
        (none live: not routed)."""
        return self._served_since(self._since.get(f"{project}/{node}"))

    def served_alias(self, project: str, alias: str) -> AliasRoute | None:
        """The alias's route in the current table if every live gateway worker serves it
        (its latest change included), else None."""
        key = f"{project}/{alias}"
        served = self._served_since(self._alias_since.get(key))
        return self._table.aliases[key] if served else None

    def _served_since(self, since: int | None) -> bool:
        served = self.gateways.oldest_served(self._table.version)
        return since is not None and served is not None and served >= since

    async def publish(self, table: RouteTable) -> None:
        """Make ``table`` current if its content differs; versions only go up."""
        if table.model_copy(update={"version": self._table.version}) == self._table:
            return
        previous = self._table
        self._table = table.model_copy(update={"version": previous.version + 1})
        self._recent[self._table.version] = self._table
        while len(self._recent) > KEPT_TABLES:
            self._recent.popitem(last=False)
        self._since = {key: self._since.get(key, self._table.version) for key in table.nodes}
        self._alias_since = {
            key: self._alias_since.get(key, self._table.version)
            if previous.aliases.get(key) == route
            else self._table.version
            for key, route in table.aliases.items()
        }
        async with self._changed:
            self._changed.notify_all()

    async def wait_newer(
        self, after: int, *, wait_s: float, worker: int = 0, workers: int = 1
    ) -> RouteTable:
        """The table as soon as its version is above ``after``, or after ``wait_s``.

        ``worker`` of ``workers``: who asks (what it serves is known from its reports)."""
        if self._table.version > after or self._closed:
            return self._table
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self._table.version > after or self._closed),
                    wait_s,
                )
        return self._table

    async def wait_changes(
        self, after: int, *, wait_s: float, worker: int = 0, workers: int = 1
    ) -> RouteChanges | RouteTable:
        """As ``wait_newer``, answered with the changes since the table of ``after`` when
        that one is still kept (else the whole table)."""
        table = await self.wait_newer(after, wait_s=wait_s, worker=worker, workers=workers)
        base = self._recent.get(after)
        return table if base is None else RouteChanges.between(base, table)

    async def close(self) -> None:
        """Answer every waiting long poll now: the control plane is stopping."""
        self._closed = True
        async with self._changed:
            self._changed.notify_all()
