"""The gateway registry over REST: each gateway worker's report, and the list of gateways.

Both are for the installation admin: a gateway already holds the token that reads every
route (``GET /api/v1/routes``: private nodes' names and token digests), so a narrower
role would narrow nothing. Both run on the event loop (``async``), where the controller
reads the registry too: no lock is needed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from pier.api.deps import ServicesDep
from pier.api.errors import error_responses
from pier.domain.errors import NotFound
from pier.domain.gateways import (
    GATEWAY_ID_PATTERN,
    GatewayList,
    GatewayReport,
    GatewayReportAnswer,
)
from pier.services.routes import GatewayRegistrySource

router = APIRouter(prefix="/api/v1", tags=["gateways"], responses=error_responses(401, 403, 503))

GatewayId = Annotated[
    str,
    Path(
        pattern=GATEWAY_ID_PATTERN,
        description="The gateway's own stable id (kept beside its routes file).",
    ),
]


def _registry(services: ServicesDep) -> GatewayRegistrySource:
    if services.gateways is None:
        raise NotFound("this server keeps no gateway registry")
    return services.gateways


@router.post("/gateways/{gateway_id}/report", responses=error_responses(400, 404, 422))
async def report_gateway(
    gateway_id: GatewayId, report: GatewayReport, services: ServicesDep
) -> GatewayReportAnswer:
    """A gateway worker's routes version, requests in flight to removed instances and
    figures; the controller counts a node routed (an instance drained) only when every
    live gateway says so."""
    return _registry(services).report(gateway_id, report)


@router.get("/gateways", responses=error_responses(404))
async def list_gateways(services: ServicesDep) -> GatewayList:
    """Every gateway that reported here: live ones are counted for routed and drained,
    silent ones (no report within PIER_GATEWAY_REGISTRY__TIMEOUT_S) are not."""
    return _registry(services).listing()
