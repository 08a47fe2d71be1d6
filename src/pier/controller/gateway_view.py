"""What the controller reads from the gateway: each node's load (its /metrics), and which
route table it serves and which removed instances it still has requests in flight to
(its /healthz)."""

from __future__ import annotations

from dataclasses import dataclass

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
    """Reads the gateway at ``gateway_url``. With ``--workers N`` the gateway's figures are
    per worker process, and a read sees one worker's."""

    def __init__(self, gateway_url: str, client: httpx.AsyncClient) -> None:
        self._url = gateway_url.rstrip("/")
        self._client = client
        self._failing = False

    async def load(self) -> dict[NodeKey, float] | None:
        """``pier_gateway_in_flight_seconds_total`` by node; None when it did not answer."""
        response = await self._get("/metrics")
        return None if response is None else parse_in_flight_seconds(response.text)

    async def status(self) -> GatewayStatus | None:
        """The routes version it serves and what it still drains; None when it did not
        answer."""
        response = await self._get("/healthz")
        if response is None:
            return None
        body = response.json()
        return GatewayStatus(int(body["routes_version"]), dict(body.get("draining") or {}))

    async def _get(self, path: str) -> httpx.Response | None:
        try:
            response = await self._client.get(self._url + path, timeout=READ_TIMEOUT_S)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            if not self._failing:
                log.info("gateway unavailable", url=self._url + path, error=str(exc))
            self._failing = True
            return None
        self._failing = False
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
