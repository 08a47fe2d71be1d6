"""What the controller reads from the gateway: each node's load (its /metrics), and which
route table it serves and which removed instances it still has requests in flight to
(its /healthz).

Until the gateway first answers it is starting (`pier up` starts it after the controller),
so failures are only logged once it had answered.

A gateway run with ``--workers N`` lists each worker's own URL in its ``/healthz``; the
figures are then read from every worker and combined: loads add up, the routes version is
the oldest any worker serves, and requests in flight to a removed instance add up.

The gateway names private nodes (in /metrics series, in the ids of draining instances)
only to a caller with a valid bearer token, so the view sends the admin token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from prometheus_client.parser import text_string_to_metric_families

from pier.domain.names import NodeKey, NodeName, ProjectName

log = structlog.get_logger(__name__)

IN_FLIGHT_SECONDS = "pier_gateway_in_flight_seconds"
READ_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    routes_version: int
    draining: dict[str, int]
    """Requests in flight to instances no longer in its routes, by instance id."""


class GatewayView:
    """Reads the gateway at ``gateway_url``, every worker of it (see the module docstring)."""

    def __init__(
        self, gateway_url: str, client: httpx.AsyncClient, *, token: str | None = None
    ) -> None:
        """``token``: a bearer token private routes take, to read private nodes' load."""
        self._url = gateway_url.rstrip("/")
        self._client = client
        self._headers = {"authorization": f"Bearer {token}"} if token else {}
        self._failing = False
        self._has_answered = False
        """False until the gateway first answers: it is still starting, not unavailable."""
        self._worker_urls: list[str] | None = None
        """Where each worker answers, as its /healthz said last; None: to be read again."""

    async def load(self) -> dict[NodeKey, float] | None:
        """``pier_gateway_in_flight_seconds_total`` by node, summed over the workers; None
        when the gateway (or one of its workers) did not answer."""
        if self._worker_urls is None and await self._statuses() is None:
            return None
        loads: dict[NodeKey, float] = {}
        for url in self._worker_urls or ():
            response = await self._get(url, "/metrics")
            if response is None:
                self._worker_urls = None
                return None
            for key, value in parse_in_flight_seconds(response.text).items():
                loads[key] = loads.get(key, 0.0) + value
        return loads

    async def status(self) -> GatewayStatus | None:
        """The routes version every worker serves (the oldest) and the requests in flight
        to removed instances (all workers'); None when it did not answer."""
        statuses = await self._statuses()
        if statuses is None:
            return None
        draining: dict[str, int] = {}
        for _, body in statuses:
            for instance_id, in_flight in (body.get("draining") or {}).items():
                draining[instance_id] = draining.get(instance_id, 0) + int(in_flight)
        version = min(int(body["routes_version"]) for _, body in statuses)
        return GatewayStatus(version, draining)

    async def _statuses(self) -> list[tuple[str, dict[str, Any]]] | None:
        """(url, /healthz body) of each worker: the gateway's own when it has one process."""
        response = await self._get(self._url, "/healthz")
        if response is None:
            return None
        body: dict[str, Any] = response.json()
        workers = [str(url).rstrip("/") for url in body.get("workers") or ()]
        if not workers:
            self._worker_urls = [self._url]
            return [(self._url, body)]
        statuses = []
        for url in workers:
            answer = await self._get(url, "/healthz")
            if answer is None:
                self._worker_urls = None
                return None
            statuses.append((url, answer.json()))
        self._worker_urls = workers
        return statuses

    async def _get(self, base_url: str, path: str) -> httpx.Response | None:
        try:
            response = await self._client.get(
                base_url + path, headers=self._headers, timeout=READ_TIMEOUT_S
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            if self._has_answered and not self._failing:
                log.info("gateway unavailable", url=base_url + path, error=str(exc))
            self._failing = True
            return None
        if self._failing and self._has_answered:
            log.info("gateway available again", url=base_url)
        self._failing = False
        self._has_answered = True
        return response


def parse_in_flight_seconds(text: str) -> dict[NodeKey, float]:
    """``pier_gateway_in_flight_seconds_total`` samples of Prometheus text, by node."""
    loads: dict[NodeKey, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != IN_FLIGHT_SECONDS:
            continue
        for sample in family.samples:
            project, node = sample.labels.get("project"), sample.labels.get("node")
            if project and node:
                loads[NodeKey(ProjectName(project), NodeName(node))] = float(sample.value)
    return loads
