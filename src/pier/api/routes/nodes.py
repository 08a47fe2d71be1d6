from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from pier.api.deps import ActorDep, ServicesDep
from pier.api.errors import error_responses
from pier.api.series_params import SinceParam, StepParam
from pier.domain.errors import NotFound
from pier.domain.names import MAX_ID
from pier.domain.requests import NodeCreate, NodeUpdate
from pier.domain.views import (
    EventList,
    InstanceList,
    InstanceStats,
    NodeList,
    NodeView,
    SeriesMetric,
    SeriesView,
    StatsList,
)
from pier.services.logs import node_logs
from pier.services.telemetry import scrape_node

router = APIRouter(
    prefix="/api/v1/projects/{project}/nodes",
    tags=["nodes"],
    responses=error_responses(401, 403, 404, 422, 503),
)
TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}


@router.post("", status_code=201, responses=error_responses(400, 403, 409))
def create_node(project: str, body: NodeCreate, services: ServicesDep, actor: ActorDep) -> NodeView:
    """Create a node from a model or an image; the controller starts its instances."""
    return services.nodes.create(project, body.name, body.spec, actor=actor)


@router.get("")
def list_nodes(
    project: str,
    services: ServicesDep,
    after: Annotated[
        str | None,
        Query(
            max_length=63,
            description="Only nodes named after this: the previous page's next_after.",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        Query(ge=1, description="Nodes per page (default: PIER_API__NODE_PAGE_SIZE)."),
    ] = None,
) -> NodeList:
    """The project's nodes by name, a page at a time: ``next_after`` asks for the next."""
    return services.nodes.page(project, after=after, limit=limit)


@router.get("/{name}")
def get_node(project: str, name: str, services: ServicesDep) -> NodeView:
    """A node: its spec (secret values as '***'), status and instance counts."""
    return services.nodes.get(project, name)


@router.patch("/{name}", responses=error_responses(400, 403))
def update_node(
    project: str, name: str, body: NodeUpdate, services: ServicesDep, actor: ActorDep
) -> NodeView:
    """Change the spec by a JSON Merge Patch (RFC 7396): a field given replaces its value,
    null removes it (back to its default), maps such as env merge key by key. Instances are
    replaced honouring maintenance_limit when what they are made of changes."""
    return services.nodes.update(project, name, body.changes(), actor=actor)


@router.delete("/{name}", status_code=202, responses=error_responses(409))
def delete_node(project: str, name: str, services: ServicesDep, actor: ActorDep) -> NodeView:
    """Mark the node Deleting; it disappears once its instances are gone. Refused (409,
    node_in_use) while an alias uses the node."""
    return services.nodes.delete(project, name, actor=actor)


@router.post("/{name}/suspend", responses=error_responses(409))
def suspend_node(project: str, name: str, services: ServicesDep, actor: ActorDep) -> NodeView:
    """Suspend the node: its instances are drained and stopped, none starts (for load or
    for a request) and the gateway answers 503 saying so; the spec is kept. Idempotent."""
    return services.nodes.suspend(project, name, actor=actor)


@router.post("/{name}/resume", responses=error_responses(409))
def resume_node(project: str, name: str, services: ServicesDep, actor: ActorDep) -> NodeView:
    """Resume a suspended node: it is brought back to its minimum. Idempotent."""
    return services.nodes.resume(project, name, actor=actor)


@router.get("/{name}/instances")
def list_instances(project: str, name: str, services: ServicesDep) -> InstanceList:
    """The node's instances with their statuses."""
    return InstanceList(instances=services.nodes.instances(project, name))


@router.get("/{name}/stats")
async def get_stats(project: str, name: str, services: ServicesDep) -> StatsList:
    """CPU and memory of each instance, as the runtime measures them now."""
    instances = services.nodes.instances(project, name)
    measured = await asyncio.gather(*(services.stats.stats(i.id) for i in instances))
    return StatsList(
        instances=[
            InstanceStats(id=i.id, status=i.status, cpu_percent=cpu, memory_bytes=memory)
            for i, (cpu, memory) in zip(instances, measured, strict=True)
        ]
    )


@router.get("/{name}/series")
def get_series(
    project: str,
    name: str,
    services: ServicesDep,
    metric: Annotated[SeriesMetric, Query(description="What to answer.")],
    since: SinceParam = 300.0,
    step: StepParam = 5,
) -> SeriesView:
    """pier's own samples of the node: requests/s, error rate, latency quantiles from the
    gateway's histogram buckets, requests in flight, instances, CPU and memory of local
    instances. Points older than the retention of their resolution are gone."""
    if services.series is None:
        raise NotFound("this server keeps no series")
    now = time.time()
    return services.series.read(project, name, metric, since=now - since, step=step, now=now)


@router.get("/{name}/events")
def list_events(
    project: str,
    name: str,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=10000, description="How many events at most.")] = 100,
    after: Annotated[
        int | None,
        Query(ge=0, le=MAX_ID, description="An event id: only the events after it, oldest first."),
    ] = None,
) -> EventList:
    """The newest ``limit`` events, oldest first; with ``after``, the first ``limit`` events
    after that one (poll with the last id seen to follow a node)."""
    return EventList(events=services.nodes.events(project, name, limit=limit, after=after))


@router.get(
    "/{name}/logs",
    response_class=Response,
    responses={200: {"description": "Log lines, each prefixed [instance-id].", **TEXT}},
)
async def get_logs(
    project: str,
    name: str,
    services: ServicesDep,
    instance: Annotated[str | None, Query(description="One instance's logs only.")] = None,
    follow: Annotated[bool, Query(description="Keep the response open for new lines.")] = False,
    tail: Annotated[int | None, Query(ge=0, description="Only the last N lines.")] = None,
) -> StreamingResponse:
    """Instance logs as text lines; ``follow`` keeps the response open for new lines."""
    lines = node_logs(
        services.repo, services.logs, project, name, instance=instance, follow=follow, tail=tail
    )
    first = await anext(lines, None)  # raise NotFound before the 200 is sent

    async def body() -> Any:
        if first is not None:
            yield first + "\n"
            async for line in lines:
                yield line + "\n"

    return StreamingResponse(body(), media_type="text/plain; charset=utf-8")


@router.get(
    "/{name}/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text exposition format.", **TEXT}},
)
async def get_metrics(project: str, name: str, services: ServicesDep) -> PlainTextResponse:
    """Prometheus text scraped from the node's Healthy instances, labelled node/instance."""
    text = await scrape_node(services.repo, project, name)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
