from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

import pier
from pier.api.deps import ServicesDep
from pier.domain.configurations import CONFIGURATIONS

router = APIRouter(prefix="/api/v1", tags=["system"])


@router.get("/info")
def info(services: ServicesDep) -> dict[str, Any]:
    return {
        "version": pier.__version__,
        "gateway_url": services.gateway_url,
        "runtimes": list(services.runtimes),
    }


@router.get("/configurations")
def configurations() -> dict[str, Any]:
    return {
        "configurations": [
            {"name": c.name, "vcpu": c.vcpu, "memory_bytes": c.memory_bytes, "gpus": c.gpus}
            for c in CONFIGURATIONS.values()
        ]
    }


@router.get("/routes")
async def routes(
    services: ServicesDep,
    after: int = -1,
    wait_s: Annotated[float, Query(ge=0, le=60)] = 0,
    worker: Annotated[int, Query(ge=0)] = 0,
    workers: Annotated[int, Query(ge=1, le=1024)] = 1,
) -> Response:
    """The gateway's route table; long-polls up to ``wait_s`` for a version above ``after``
    (the version the asking gateway worker serves: ``worker`` of ``workers``)."""
    table = await services.routes.wait_newer(
        after, wait_s=wait_s, worker=min(worker, workers - 1), workers=workers
    )
    return Response(table.model_dump_json(), media_type="application/json")
