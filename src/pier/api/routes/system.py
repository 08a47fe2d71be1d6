from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

import pier
from pier.api.deps import ServicesDep
from pier.api.errors import error_responses
from pier.domain.configurations import CONFIGURATIONS
from pier.domain.errors import NotFound
from pier.domain.routes import RouteTable
from pier.domain.views import ConfigurationList, ControllerFigures, Info

router = APIRouter(prefix="/api/v1", tags=["system"], responses=error_responses(401, 403, 503))


@router.get("/info")
def info(services: ServicesDep) -> Info:
    """pier's version, the gateway's URL and the runtimes instances can run on."""
    return Info(
        version=pier.__version__,
        gateway_url=services.gateway_url,
        runtimes=list(services.runtimes),
    )


@router.get("/configurations")
def configurations() -> ConfigurationList:
    """The configurations (compute profiles) a node can use."""
    return ConfigurationList(configurations=list(CONFIGURATIONS.values()))


@router.get("/routes", response_model=RouteTable, responses=error_responses(422))
async def routes(
    services: ServicesDep,
    after: Annotated[int, Query(description="The version the asking gateway has.")] = -1,
    wait_s: Annotated[
        float, Query(ge=0, le=60, description="How long to wait for a newer version.")
    ] = 0,
    worker: Annotated[int, Query(ge=0, description="The asking gateway worker.")] = 0,
    workers: Annotated[int, Query(ge=1, le=1024, description="How many workers it has.")] = 1,
    changes: Annotated[
        bool,
        Query(
            description="Answer with the changes since ``after`` (a RouteChanges with "
            "its ``base``) when the control plane still has that table."
        ),
    ] = False,
) -> Response:
    """The gateway's route table; long-polls up to ``wait_s`` for a version above ``after``
    (the version the asking gateway worker serves: ``worker`` of ``workers``)."""
    wait = services.routes.wait_changes if changes else services.routes.wait_newer
    table = await wait(after, wait_s=wait_s, worker=min(worker, workers - 1), workers=workers)
    return Response(table.model_dump_json(), media_type="application/json")


@router.get("/controller", responses=error_responses(404))
def controller(services: ServicesDep) -> ControllerFigures:
    """How long the controller's recent reconcile passes (ticks) took, and whether this
    `pier up` leads (runs the controller) or follows another on the same store."""
    if services.controller is None:
        raise NotFound("this server runs no controller")
    return services.controller.figures()
