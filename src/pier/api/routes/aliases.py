from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query

from pier.api.deps import ActorDep, ServicesDep
from pier.api.errors import error_responses
from pier.api.series_params import SinceParam, StepParam
from pier.domain.errors import NotFound
from pier.domain.requests import AliasCreate, AliasPut, AliasUpdate
from pier.domain.views import AliasList, AliasView, SeriesMetric, SeriesView

router = APIRouter(
    prefix="/api/v1/projects/{project}/aliases",
    tags=["aliases"],
    responses=error_responses(401, 403, 404, 422, 503),
)


@router.post("", status_code=201, responses=error_responses(400, 409))
def create_alias(
    project: str, body: AliasCreate, services: ServicesDep, actor: ActorDep
) -> AliasView:
    """Create an alias over nodes of the project; the gateway serves it once published."""
    return services.aliases.create(project, body.name, body.spec, actor=actor)


@router.get("")
def list_aliases(project: str, services: ServicesDep) -> AliasList:
    """The project's aliases."""
    return AliasList(aliases=services.aliases.list(project))


@router.get("/{name}")
def get_alias(project: str, name: str, services: ServicesDep) -> AliasView:
    """An alias: its spec and, per node, its share, the share it takes now and why."""
    return services.aliases.get(project, name)


@router.get("/{name}/series")
def get_alias_series(
    project: str,
    name: str,
    services: ServicesDep,
    metric: Annotated[SeriesMetric, Query(description="What to answer.")],
    since: SinceParam = 300.0,
    step: StepParam = 5,
) -> SeriesView:
    """pier's own samples of the alias's requests, as the gateway counted them: one line
    for the alias (every node added up) and one per node behind it (``node``).
    requests_per_s, errors_per_s, error_rate, p50/p95/p99 (from the gateway's first try
    to the end of the answer), bytes_in_per_s and bytes_out_per_s; other metrics are
    refused (422, naming ``metric``)."""
    if services.series is None:
        raise NotFound("this server keeps no series")
    now = time.time()
    return services.series.read_alias(project, name, metric, since=now - since, step=step, now=now)


@router.put("/{name}", responses=error_responses(400))
def put_alias(
    project: str, name: str, body: AliasPut, services: ServicesDep, actor: ActorDep
) -> AliasView:
    """Replace the alias's spec; every gateway worker switches to it at once."""
    return services.aliases.put(project, name, body.spec, actor=actor)


@router.patch("/{name}", responses=error_responses(400))
def update_alias(
    project: str, name: str, body: AliasUpdate, services: ServicesDep, actor: ActorDep
) -> AliasView:
    """Change the spec by a JSON Merge Patch (RFC 7396): a field given replaces its value
    (``nodes`` is replaced whole), null removes it, maps such as metadata merge key by key."""
    return services.aliases.update(project, name, body.changes(), actor=actor)


@router.delete("/{name}", status_code=204)
def delete_alias(project: str, name: str, services: ServicesDep, actor: ActorDep) -> None:
    """Delete the alias; its nodes stay."""
    services.aliases.delete(project, name, actor=actor)
